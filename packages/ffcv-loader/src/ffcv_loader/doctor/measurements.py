"""The doctor's measurements, each stage on its own: reading the file (cold and warm), the
Loader decoding and augmenting, a JPEG decoder on the file's images, host-to-device copies, a
model. Each returns a dataclass of numbers (:class:`StorageReads`, :class:`LoaderRun`, ...;
``dataclasses.asdict`` gives what the JSON report shows); :class:`Measurements` gathers them,
with what the analysis needs of the file, the settings and the pipelines, as the input of
:func:`ffcv_loader.doctor.analysis.analyse`."""
import ctypes
import math
import mmap
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .file_facts import FileFacts
from .pipelines import load_callable

# Wrong values a user gave (a pipeline that is not a list of operations, a model that is not a
# module) raise ValueError, not TypeError: the ffcv command line prints a ValueError as one
# line and shows a TypeError's traceback, as a bug of ffcv.

_CHUNK = 8 << 20


@dataclass
class ColdRead:
    """The file read from disk one way, after it was dropped from the page cache."""
    mb_s: float
    bytes: int
    reads: int
    seconds: float
    reads_s: float
    samples_s: float          # MB/s over the file's bytes per sample (random samples: samples read/s)


@dataclass
class WarmRead:
    """The first ``range`` bytes of the file read again from the page cache."""
    mb_s: float
    bytes: int
    seconds: float
    range: int
    samples_s: float


@dataclass
class StorageReads:
    """:func:`measure_storage`'s figures. A cold read is None where there was nothing to read
    that way; ``evicted`` is None where eviction could not be confirmed."""
    bytes_per_sample: float
    page_size: int
    evicted: bool
    resident_after_eviction: float
    not_evicted_because: str
    cold_random_samples: ColdRead
    cold_random_pages: ColdRead
    cold_sequential: ColdRead
    warm: WarmRead
    warm_range: int


@dataclass
class LoaderRun:
    """:func:`measure_loader`'s figures: samples/s of a Loader (``indices``: how many sample
    ids it was limited to, None: all)."""
    workers: int
    samples_s: float
    batches: int
    samples: int
    seconds: float
    first_batch_s: float
    indices: int = None


@dataclass
class JpegTiming:
    """:func:`measure_jpeg_decoding`'s figures for one image field (seconds per image)."""
    images: int
    decode_s: float
    decode_q75_s: float
    mean_bytes: float
    mean_bytes_q75: float
    mean_pixels: float


@dataclass
class Rate:
    """MB/s and the samples/s they carry."""
    mb_s: float
    samples_s: float


@dataclass
class TransferRates:
    """:func:`measure_transfer`'s figures: one batch copied from pageable and pinned memory."""
    device: str
    bytes_per_batch: int
    bytes_per_sample: float
    float_image_bytes_per_sample: float
    pageable: Rate
    pinned: Rate


@dataclass
class ModelRun:
    """:func:`measure_model`'s figures (``name``: how the model was given)."""
    device: str
    samples_s: float
    steps: int
    seconds: float
    mode: str
    input_shape: list
    name: str = None


@dataclass
class Skipped:
    """A stage not measured, and why (no CUDA device, no model given)."""
    skipped: str


@dataclass
class Measurements:
    """What the analysis reads: every measured figure and what it was measured against.

    - ``file``: :class:`FileFacts` (sizes, pages, the image fields' stored sizes).
    - ``storage``: :class:`StorageReads` (:func:`measure_storage`).
    - ``decode``: :class:`LoaderRun` by name (:func:`measure_loader`): ``'one'`` (1 worker thread), ``'chosen'``
      (``settings['workers']``) and, where measured, ``'all_cores'``, ``'configured'`` (the
      loader with ``os_cache=False`` as given) and ``'configured_quasi'`` (the same, order
      QUASI_RANDOM).
    - ``jpeg``: :class:`JpegTiming` by image field (:func:`measure_jpeg_decoding`);
      ``transfer``: :class:`TransferRates`, ``model``: :class:`ModelRun`, or either
      :class:`Skipped`.
    - ``settings``: ``workers``, ``cores``, ``batch_size``, ``order``, ``os_cache``,
      ``process_cache_limit``; ``memory``: bytes available (None: unknown).
    - ``crops``: per field that has a pipeline, its cropping decoder's output (height, width),
      or None; ``device_copy``: whether the pipelines copy to a CUDA device (``ToDevice``).
    """
    file: FileFacts
    storage: StorageReads
    decode: dict
    jpeg: dict
    transfer: TransferRates | Skipped
    model: ModelRun | Skipped
    settings: dict
    memory: int = None
    crops: dict = field(default_factory=dict)
    device_copy: bool = False


# ------------------------------------------------------------------------ storage

def _resident_share(path, length):
    """The share of the first ``length`` bytes of ``path`` held in the page cache (mincore),
    or None where that cannot be told (Linux reports it only for files the caller owns or
    may write)."""
    if length <= 0:
        return 0.0
    try:
        status = os.stat(path)
        if status.st_uid != os.geteuid() and not os.access(path, os.W_OK):
            return None
        libc = ctypes.CDLL(None, use_errno=True)
        mincore = libc.mincore
        mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        mincore.restype = ctypes.c_int
        length = min(length, 1 << 36)
        with open(path, 'rb') as f:
            mapping = mmap.mmap(f.fileno(), length, access=mmap.ACCESS_READ)
        try:
            view = np.frombuffer(mapping, dtype=np.uint8)
            vector = np.zeros(-(-length // mmap.PAGESIZE), dtype=np.uint8)
            failed = mincore(view.ctypes.data, length, vector.ctypes.data) != 0
            del view
        finally:
            mapping.close()
        return None if failed else float((vector & 1).mean())
    except (OSError, AttributeError, ValueError):
        return None


def _evict(fd, path, file_size):
    """Drop the file from the page cache; (resident share afterwards or None, why not evicted or None)."""
    if not hasattr(os, 'posix_fadvise'):
        return None, 'posix_fadvise is not available on this system'
    try:
        os.fdatasync(fd)          # dirty pages are not dropped
    except OSError:
        pass
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError as e:
        return None, f"posix_fadvise failed: {e.strerror}"
    return _resident_share(path, file_size), None


def _read_loop(fd, ranges, seconds, buffer):
    """Read ``(offset, length)`` ranges in order until done or ``seconds`` passed:
    (bytes, reads, seconds)."""
    view = memoryview(buffer)
    total = reads = 0
    started = time.perf_counter()
    for offset, length in ranges:
        done = 0
        while done < length:
            n = os.preadv(fd, [view[:min(length - done, len(buffer))]], offset + done)
            if n <= 0:
                break
            done += n
        total += done
        reads += 1
        if time.perf_counter() - started >= seconds:
            break
    return total, reads, max(time.perf_counter() - started, 1e-9)


def measure_storage(facts, seconds=1.0, evict=True, seed=0):
    """Cold (sequential, random pages, random samples) and warm read rates of the file."""
    path, size, ps = facts.path, facts.file_size, facts.page_size
    rng = np.random.default_rng(seed)
    result = {'bytes_per_sample': size / facts.num_samples, 'page_size': ps, 'evicted': None,
              'resident_after_eviction': None, 'not_evicted_because': None}
    buffer = bytearray(max(_CHUNK, ps))
    fd = os.open(path, os.O_RDONLY)
    try:
        shares = []

        def cold(ranges, key):
            if evict:
                share, why = _evict(fd, path, size)
                shares.append(share)
                if why:
                    result['not_evicted_because'] = why
            nbytes, reads, took = _read_loop(fd, ranges, seconds, buffer)
            result[key] = {'mb_s': nbytes / took / 1e6, 'bytes': int(nbytes), 'reads': int(reads),
                           'seconds': took, 'reads_s': reads / took}
            return nbytes

        sample_ranges = []
        for k in rng.permutation(len(facts.extents)):
            sample_ranges.extend(facts.extents[k])
        if sample_ranges:
            cold(sample_ranges, 'cold_random_samples')
            result['cold_random_samples']['samples_s'] = result['cold_random_samples']['reads_s'] \
                * len(facts.extents) / max(len(sample_ranges), 1)
        else:
            result['cold_random_samples'] = None
        first_page, last_page = facts.data_start // ps, -(-facts.data_end // ps)
        pages = [(int(p) * ps, min(ps, size - int(p) * ps)) for p in rng.permutation(np.arange(first_page, last_page))]
        if pages:
            cold(pages, 'cold_random_pages')
        else:
            result['cold_random_pages'] = None
        sequential = [(offset, min(_CHUNK, size - offset)) for offset in range(0, size, _CHUNK)]
        warm_end = cold(sequential, 'cold_sequential')
        if evict and shares:
            known = [s for s in shares if s is not None]
            result['resident_after_eviction'] = max(known) if known else None
            result['evicted'] = (max(known) < 0.1) if known and len(known) == len(shares) else None
            if result['evicted'] is False:
                result['not_evicted_because'] = (f"{max(known):.0%} of the file stayed in the page cache "
                                                  f"(mapped by another process, or a RAM-backed file system)")
            elif result['evicted'] is None and not result['not_evicted_because']:
                result['not_evicted_because'] = 'the page cache cannot be queried for this file (mincore)'
        elif not evict:
            result['not_evicted_because'] = 'not evicted (asked not to)'
        warm = [(offset, min(_CHUNK, warm_end - offset)) for offset in range(0, warm_end, _CHUNK)]
        total, took, passes = 0, 0.0, 0
        while warm and (took < 0.1 or passes < 2) and passes < 50:
            nbytes, _, t = _read_loop(fd, warm, seconds, buffer)
            total, took, passes = total + nbytes, took + t, passes + 1
        result['warm'] = {'mb_s': total / max(took, 1e-9) / 1e6, 'bytes': int(total), 'seconds': took,
                          'range': int(warm_end)}
        result['warm_range'] = int(warm_end)
    finally:
        os.close(fd)
    bps = result['bytes_per_sample']
    for key in ('cold_sequential', 'cold_random_pages', 'warm'):
        if result.get(key):
            result[key]['samples_s'] = result[key]['mb_s'] * 1e6 / bps
    return StorageReads(**{key: (WarmRead(**value) if key == 'warm' else ColdRead(**value))
                           if isinstance(value, dict) else value for key, value in result.items()})


# ------------------------------------------------------------------------ the loader

def _order_option(order):
    from ffcv_loader import OrderOption
    return OrderOption[order.upper()]


def _sync():
    import torch
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _copy_outputs(outputs):
    import torch
    copied = []
    for value in outputs:
        if isinstance(value, torch.Tensor):
            copied.append(value.detach().clone())
        elif isinstance(value, np.ndarray):
            copied.append(value.copy())
        else:
            copied.append(value)
    return copied


def measure_loader(path, make_pipelines, *, workers, batch_size, order, os_cache=True, batches=None,
                   seconds=1.5, indices=None, process_cache_limit=None, keep_first=False):
    """Samples/s of a Loader: a warm-up epoch (compiles) is started and stopped, then a
    fresh epoch is timed for ``batches`` batches (or about ``seconds``, at least 2)."""
    from ffcv_loader import Loader
    n_indices = None if indices is None else len(indices)
    started = time.perf_counter()
    loader = Loader(path, batch_size=batch_size, num_workers=workers, os_cache=os_cache,
                    order=_order_option(order), seed=0, indices=indices, pipelines=make_pipelines(),
                    drop_last=True, process_cache_limit=process_cache_limit)
    try:
        epoch = iter(loader)
        first = next(epoch)
        _sync()
        first_batch_s = time.perf_counter() - started
        first = _copy_outputs(first) if keep_first else None
        epoch.close()
        count = done = 0
        started = time.perf_counter()
        stop = False
        while not stop:
            epoch = iter(loader)
            for outputs in epoch:
                done += 1
                count += len(outputs[0]) if hasattr(outputs[0], '__len__') else batch_size
                elapsed = time.perf_counter() - started
                if (batches is not None and done >= batches) or \
                        (batches is None and elapsed >= seconds and done >= 2) or done >= 10_000:
                    stop = True
                    break
            epoch.close()
        _sync()
        took = max(time.perf_counter() - started, 1e-9)
    finally:
        loader.close()
    return LoaderRun(workers=workers, samples_s=count / took, batches=done, samples=count, seconds=took,
                     first_batch_s=first_batch_s, indices=n_indices), first


def measure_jpeg_decoding(facts, rounds=3):
    """Per image field: seconds to decode one stored JPEG (libjpeg-turbo, as the decoders do)
    and the same image re-encoded at quality 75, on a few of the file's images (the best of
    ``rounds`` interleaved rounds)."""
    import cv2
    import simplejpeg
    results = {}
    for name, blobs in facts.jpeg_samples.items():
        if not blobs:
            continue
        colorspace = 'GRAY' if facts.images[name]['channels'] == 1 else 'RGB'
        decoded = [simplejpeg.decode_jpeg(data, colorspace) for data in blobs]
        at_75 = [cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 75])[1].tobytes() for image in decoded]
        best = {'stored': math.inf, 'q75': math.inf}
        for _ in range(rounds):
            for key, datas in (('stored', blobs), ('q75', at_75)):
                started = time.perf_counter()
                for data in datas:
                    simplejpeg.decode_jpeg(data, colorspace)
                best[key] = min(best[key], (time.perf_counter() - started) / len(datas))
        results[name] = JpegTiming(images=len(blobs), decode_s=best['stored'], decode_q75_s=best['q75'],
                                   mean_bytes=float(np.mean([len(b) for b in blobs])),
                                   mean_bytes_q75=float(np.mean([len(b) for b in at_75])),
                                   mean_pixels=float(np.mean([d.shape[0] * d.shape[1] for d in decoded])))
    return results


# ------------------------------------------------------------------------ CUDA, model

def _as_tensors(outputs):
    import torch
    tensors = []
    for value in outputs:
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if isinstance(value, torch.Tensor):
            tensors.append(value.detach().cpu())
    return tensors


def measure_transfer(outputs, device, batch_size, seconds=0.3):
    """Host-to-device MB/s of one batch of outputs, from pageable and from pinned memory."""
    import torch
    tensors = _as_tensors(outputs)
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    floats = sum(t.numel() * t.element_size() for t in tensors if t.dim() >= 4 and t.element_size() >= 4
                 and t.is_floating_point())
    result = {'device': str(device), 'bytes_per_batch': int(nbytes), 'bytes_per_sample': nbytes / batch_size,
              'float_image_bytes_per_sample': floats / batch_size}

    def timed(sources, non_blocking):
        for t in sources:                       # warm-up (allocator, context)
            t.to(device, non_blocking=non_blocking)
        torch.cuda.synchronize()
        reps, started = 0, time.perf_counter()
        while reps < 3 or (time.perf_counter() - started < seconds and reps < 100):
            for t in sources:
                t.to(device, non_blocking=non_blocking)
            torch.cuda.synchronize()
            reps += 1
        took = time.perf_counter() - started
        return nbytes * reps / took / 1e6

    for key, sources, non_blocking in (('pageable', tensors, False),
                                       ('pinned', [t.pin_memory() for t in tensors], True)):
        mb_s = timed(sources, non_blocking)
        result[key] = Rate(mb_s=mb_s, samples_s=mb_s * 1e6 / max(result['bytes_per_sample'], 1e-9))
    return TransferRates(**result)


def load_model(model):
    """``model``: a torch module, a callable returning one, or 'MODULE:CALLABLE' / 'FILE.py:CALLABLE'."""
    import torch
    name = None
    if isinstance(model, str):
        name = model.rsplit(':', 1)[-1]
        model = load_callable(model, '--model')
    if not isinstance(model, torch.nn.Module):
        if not callable(model):
            raise ValueError(f"--model: expected a torch.nn.Module or a callable returning one, "  # noqa: TRY004
                             f"got {type(model).__name__}")
        made = model()
        if not isinstance(made, torch.nn.Module):
            raise ValueError(f"--model {name or model!r} returned a {type(made).__name__}, "  # noqa: TRY004
                             f"not a torch.nn.Module")
        name = name or getattr(model, '__name__', type(made).__name__)
        model = made
    return model, name or type(model).__name__


def measure_model(model, example, device, batch_size, inference=False, seconds=1.5):
    """Samples/s of the model on batches like ``example`` (the pipelines' image output, as
    float32 if it is an integer tensor): forward + backward, or forward only."""
    import torch
    model = model.to(device)
    model.eval() if inference else model.train()
    x = example.to(device)
    if not (x.is_floating_point() or x.is_complex()):
        x = x.float()

    def step():
        if inference:
            with torch.no_grad():
                model(x)
            return
        out = model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        out.float().mean().backward()
        model.zero_grad(set_to_none=True)

    def sync():
        if torch.device(device).type == 'cuda':
            torch.cuda.synchronize()

    for _ in range(2):
        step()
    sync()
    reps, started = 0, time.perf_counter()
    while reps < 3 or (time.perf_counter() - started < seconds and reps < 50):
        step()
        reps += 1
    sync()
    took = time.perf_counter() - started
    return ModelRun(device=str(device), samples_s=batch_size * reps / took, steps=reps, seconds=took,
                    mode='forward' if inference else 'forward+backward', input_shape=list(x.shape))
