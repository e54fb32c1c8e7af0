"""``ffcv doctor``: which stage limits loading *this* file with *this* pipeline on *this* machine.

The doctor measures each stage of the data path on its own and compares them:

1. **Storage.** The file is dropped from the page cache (``posix_fadvise(DONTNEED)``, after
   which ``mincore`` tells how much of it really left memory) and read cold three ways:
   sequentially in large chunks, as the file's pages in random order (what the process
   cache does, ``os_cache=False``), and as random samples' data (what a memory map does
   with order RANDOM, ``os_cache=True``); then the part read sequentially is read again,
   warm, from the page cache. MB/s become samples/s through the file's bytes per sample
   (file size / samples). Each pass stops after about ``storage_seconds``.
2. **Decode + augment.** The ``Loader`` runs the pipeline from memory (``os_cache=True``, the
   data warm) with 1 worker thread, with the chosen number, and with one per core when
   fewer were chosen. A warm-up epoch is started first (it compiles the pipeline) and
   stopped; timing starts with a fresh epoch, so nothing prepared ahead is counted.
   With ``os_cache=False`` the loader as configured is timed as well.
3. **Transfer and model** (CUDA only; a model may also be timed on the CPU): one batch
   of the pipeline's output copied to the device from pageable and from pinned memory,
   and the model's forward (+ backward) pass on a batch shaped like that output.

The storage stage at the chosen settings is computed from these figures:

- ``os_cache=True``: from the page cache (warm) if the file fits in the memory available
  (``MemAvailable``), otherwise from disk (random samples; pages for QUASI_RANDOM; the
  sequential figure for SEQUENTIAL).
- ``os_cache=False``: the loader reads whole pages into its own cache of
  ``process_cache_limit`` bytes. If the file fits there, as ``os_cache=True``. If not,
  each sample costs a page read unless its page is still cached: with order RANDOM,
  ``distinct pages per batch / batch_size x (1 - cached share)`` pages per sample; with
  SEQUENTIAL or QUASI_RANDOM every page is read once an epoch. Page reads come from the
  page cache if the file fits in RAM, from disk otherwise. When the loader as configured
  measures below 80% of the decode rate, that measurement is taken as the storage figure
  if it is lower.

The slowest stage is the bottleneck; each recommendation carries the measured figures
it is computed from and its expected gain on the loader's throughput (capped by the next
slowest stage).

>>> report = diagnose('train.beton', workers=2)            # doctest: +SKIP
>>> report.bottleneck                                       # doctest: +SKIP
'decode'
>>> print(report.render())                                  # doctest: +SKIP
"""
import argparse
import copy
import ctypes
import dataclasses
import importlib
import importlib.util
import json
import math
import mmap
import os
import re
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from ffcv_format.units import human_size, positive_int_argument, size_argument

__all__ = ['STAGE_NAMES', 'Recommendation', 'Report', 'Stage', 'add_commands', 'default_pipelines', 'diagnose',
           'parse_pipelines']

# Wrong values a user gave (a pipeline that is not a list of operations, a model that is not a
# module) raise ValueError, not TypeError: the ffcv command line prints a ValueError as one
# line and shows a TypeError's traceback, as a bug of ffcv.

#: stage keys (``Report.bottleneck``) and how the report names them
STAGE_NAMES = {'storage': 'storage read', 'decode': 'decode + augment', 'transfer': 'host-to-device transfer',
               'model': 'model'}

#: scaling below this share of the ideal (threads x one thread) is reported as poor
POOR_SCALING = 0.7
#: a change is recommended only when its expected gain on the slowest stage is at least this
MIN_GAIN = 1.1
_CHUNK = 8 << 20
_ORDERS = ('sequential', 'random', 'quasi_random')


# ------------------------------------------------------------------------ pipelines

#: what each kind of field gets when no pipeline is given (pipelines as data, like --pipeline)
DEFAULT_OPS = {
    'ImageField': [{'op': 'RandomResizedCropRGBImageDecoder', 'output_size': [224, 224]}, 'RandomHorizontalFlip',
                   'ToTensor', 'ToTorchImage'],
    'IntField': ['IntDecoder', 'ToTensor'],
    'FloatField': ['FloatDecoder', 'ToTensor'],
    'NDArrayField': ['NDArrayDecoder', 'ToTensor'],
}

#: ``FIELD=NAME,NAME,...``: operations without arguments, named without quotes or brackets
_NAMES_ONLY = re.compile(r'^\s*[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*,?\s*$')


def _field_pipeline_data(field_name, text):
    """The data of ``--pipeline FIELD=TEXT``: None (``None``/``null``: the field left out),
    [] (empty: the default decoder), a list of names (``A,B``), or JSON/YAML (a list)."""
    from ffcv_ops.pipeline_data import read_data
    stripped = text.strip()
    if stripped in ('None', 'null', '~'):
        return None
    if not stripped:
        return []
    if _NAMES_ONLY.match(stripped):
        return [name.strip() for name in stripped.split(',') if name.strip()]
    try:
        data = read_data(stripped)
    except ValueError as e:
        hint = (" (Python expressions are not evaluated: write the operations as data, e.g. "
                "'[{\"op\": \"RandomResizedCropRGBImageDecoder\", \"output_size\": [160, 160]}, "
                "\"RandomHorizontalFlip\"]')") if '(' in stripped else ''
        raise ValueError(f"--pipeline {field_name}={text}: {e}{hint}") from None
    if data is not None and not isinstance(data, list):
        raise ValueError(f"--pipeline {field_name}={text}: a pipeline is a list of operations "
                         f"(NAME or {{\"op\": NAME, ARGUMENT: VALUE}}), got {type(data).__name__}")
    return data


def load_callable(spec, option='--pipeline'):
    """``'package.module:name'`` or ``'path/to/file.py:name'`` -> the object (must be callable)."""
    if ':' not in spec:
        raise ValueError(f"{option} {spec!r}: write MODULE:CALLABLE or FILE.py:CALLABLE")
    module_name, attribute = spec.rsplit(':', 1)
    if not module_name or not attribute:
        raise ValueError(f"{option} {spec!r}: write MODULE:CALLABLE or FILE.py:CALLABLE")
    if module_name.endswith('.py') or os.sep in module_name:
        if not os.path.isfile(module_name):
            raise ValueError(f"{option} {spec!r}: no file {module_name!r}")
        name = '_ffcv_doctor_' + os.path.splitext(os.path.basename(module_name))[0]
        module_spec = importlib.util.spec_from_file_location(name, module_name)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ValueError(f"{option} {spec!r}: cannot import {module_name!r} ({e})") from None
    value = module
    for part in attribute.split('.'):
        if not hasattr(value, part):
            raise ValueError(f"{option} {spec!r}: {module_name} has no {attribute!r}")
        value = getattr(value, part)
    if not callable(value):
        raise ValueError(f"{option} {spec!r}: {attribute} is a {type(value).__name__}, "  # noqa: TRY004
                         f"not a callable")
    return value


@dataclass
class PipelineChoice:
    """How the pipelines were given: ``make()`` builds a fresh ``pipelines`` dict for a Loader
    (each loader gets its own operation objects); ``described`` is per output what the
    report shows; ``origin`` says where they came from."""
    make: object
    described: dict
    origin: str


def _field_kind(handler):
    from ffcv_format import FloatField, ImageField, IntField, NDArrayField
    for kind in (ImageField, IntField, FloatField, NDArrayField):
        if isinstance(handler, kind):
            return kind.__name__
    return None


def default_pipelines(handlers):
    """The default pipeline of each field, as data (``handlers``: name -> field); fields not
    listed get the Loader's default decoder."""
    return {name: copy.deepcopy(DEFAULT_OPS[kind]) for name, handler in handlers.items()
            if (kind := _field_kind(handler)) in DEFAULT_OPS}


def _from_data(data, handlers, origin):
    """A PipelineChoice from ``{field: list of items or None}`` (pipelines as data)."""
    from ffcv_ops.pipeline_data import describe_item, pipeline_from_data

    def build_all():
        return {name: (None if items is None else pipeline_from_data(items, name)) for name, items in data.items()}

    build_all()  # fail now, naming the field, rather than inside a measurement
    described = {}
    for name in handlers:
        items = data.get(name, [])
        if items is None:
            described[name] = 'left out'
        else:
            described[name] = ', '.join(describe_item(item) for item in items) or \
                f"(default decoder: {_default_decoder_name(handlers[name])})"
    return PipelineChoice(build_all, described, origin)


def _default_decoder_name(handler):
    from ffcv_ops import default_decoder
    try:
        return type(default_decoder(handler)).__name__
    except TypeError:
        return 'none'


def parse_pipelines(specs, handlers):
    """Read ``--pipeline`` options against a file's fields (``handlers``: name -> field).

    Pipelines are data, never code (``ffcv_ops.pipeline_data``). Each spec is one of:

    - ``FIELD=DATA``: the field's pipeline as a JSON or YAML list of items, each
      ``{"op": NAME, ARGUMENT: VALUE, ...}`` or ``NAME``; ``FIELD=NAME,NAME`` for operations
      without arguments; ``FIELD=None`` (or ``null``) leaves the field out; ``FIELD=`` gives it
      its default decoder. NAMEs are the ``ffcv.ops`` entry points (built-ins and plugins).
    - ``FILE`` (``.json``, ``.yaml``) or JSON/YAML text of a mapping ``{field: [items]}``
      (``--pipelines FILE``); fields it names may not be named again.
    - ``MODULE:FUNCTION`` / ``FILE.py:FUNCTION``, alone: a function returning a ``pipelines``
      dict as the Loader takes it.

    No spec at all: the defaults of :func:`default_pipelines`.

    >>> choice = parse_pipelines(['label=["IntDecoder", "ToTensor"]'], reader.handlers)  # doctest: +SKIP
    >>> loader = Loader(path, 256, pipelines=choice.make())                               # doctest: +SKIP
    """
    specs = list(specs or [])
    if not specs:
        return _from_data(default_pipelines(handlers), handlers, 'default (no --pipeline given)')
    callables = [s for s in specs if _is_callable_spec(s)]
    if callables:
        if len(specs) > 1:
            raise ValueError(f"--pipeline {callables[0]!r}: give either one --pipeline MODULE:FUNCTION "
                             f"or FIELD=... / --pipelines FILE options, not both")
        return _from_callable(callables[0], handlers)
    data, origins = {}, []

    def add(name, items, where):
        if name not in handlers:
            raise ValueError(f"{where}: the file has no field {name!r} (fields: {', '.join(handlers)})")
        if name in data:
            raise ValueError(f"--pipeline: field {name!r} is given twice")
        data[name] = items

    for spec in specs:
        if _is_field_spec(spec):
            name, text = spec.split('=', 1)
            add(name.strip(), _field_pipeline_data(name.strip(), text), f"--pipeline {spec!r}")
            if 'given (--pipeline)' not in origins:
                origins.append('given (--pipeline)')
        else:
            mapping = _mapping_data(spec)
            for name, items in mapping.items():
                add(str(name), items, f"--pipelines {spec!r}")
            origins.append(f"from {spec}" if os.path.isfile(spec) else 'given (--pipelines)')
    return _from_data(data, handlers, ', '.join(origins))


def _mapping_data(spec):
    """The ``{field: [items]}`` of ``--pipelines FILE`` (or of JSON/YAML text)."""
    from ffcv_ops.pipeline_data import read_data
    try:
        mapping = read_data(spec)
    except ValueError as e:
        raise ValueError(f"--pipelines {spec!r}: {e}") from None
    except OSError as e:
        raise ValueError(f"--pipelines {spec!r}: cannot read it ({e})") from None
    if not isinstance(mapping, dict):
        raise ValueError(f"--pipelines {spec!r}: pipelines are a mapping of field name -> list of "  # noqa: TRY004
                         f"operations, got {type(mapping).__name__}")
    for name, items in mapping.items():
        if items is not None and not isinstance(items, list):
            raise ValueError(f"--pipelines {spec!r}: field {name!r}: a pipeline is a list of operations, "
                             f"got {type(items).__name__}")
    return mapping


def _is_field_spec(spec):
    head = spec.split('=', 1)[0]
    return '=' in spec and head.strip().isidentifier()


def _is_callable_spec(spec):
    """``MODULE:FUNCTION`` or ``FILE.py:FUNCTION`` (not FIELD=..., not a data file or text)."""
    if _is_field_spec(spec) or os.path.isfile(spec):
        return False
    stripped = spec.strip()
    if stripped.startswith(('{', '[')) or '\n' in stripped or ': ' in stripped:
        return False
    return ':' in stripped


def _from_callable(spec, handlers):
    function = load_callable(spec, '--pipeline')

    def make():
        pipelines = function()
        if not isinstance(pipelines, dict):
            raise ValueError(f"--pipeline {spec!r} returned a {type(pipelines).__name__}, not a dict "  # noqa: TRY004
                             f"of field name -> list of operations")
        return pipelines

    return _from_mapping(make, handlers, f"from {spec}")


def _from_mapping(make, handlers, origin):
    from ffcv_ops import Operation, PipelineSpec
    first = make()
    described = {}
    for name, value in first.items():
        if name not in handlers and not isinstance(value, PipelineSpec) and value is not None:
            raise ValueError(f"the pipelines name {name!r}, which is not a field of the file "
                             f"(fields: {', '.join(handlers)})")
    for name in list(handlers) + [k for k in first if k not in handlers]:
        value = first.get(name, [])
        if value is None:
            described[name] = 'left out'
        elif isinstance(value, PipelineSpec):
            ops = ([value.decoder] if value.decoder is not None else []) + list(value.transforms)
            described[name] = f"from {value.source}: " + ', '.join(_op_text(op) for op in ops)
        else:
            ops = [value] if isinstance(value, Operation) else list(value)
            described[name] = ', '.join(_op_text(op) for op in ops) or \
                f"(default decoder: {_default_decoder_name(handlers[name])})"
    return PipelineChoice(make, described, origin)


def _op_text(op):
    text = repr(op)
    return text if ' object at 0x' not in text else f"{type(op).__name__}(...)"


def _choice_from_argument(pipelines, handlers):
    """``diagnose``'s ``pipelines``: None, a list of --pipeline specs, a dict, or a callable."""
    if pipelines is None or (isinstance(pipelines, (list, tuple)) and all(isinstance(s, str) for s in pipelines)):
        return parse_pipelines(pipelines, handlers)
    if isinstance(pipelines, str):
        return parse_pipelines([pipelines], handlers)
    if callable(pipelines):
        return _from_mapping(pipelines, handlers, 'given (a function)')
    if isinstance(pipelines, dict):
        original = pipelines

        def make():
            try:
                return copy.deepcopy(original)   # each loader gets its own operation objects
            except (TypeError, copy.Error, RuntimeError):
                return original
        return _from_mapping(make, handlers, 'given (a dict)')
    raise ValueError(f"pipelines must be None, a dict, a function returning one, or --pipeline strings, "
                     f"got {type(pipelines).__name__}")


# ------------------------------------------------------------------------ the file

@dataclass
class _FileFacts:
    path: str
    file_size: int
    num_samples: int
    page_size: int
    data_start: int
    data_end: int
    fields: dict              # name -> field class name
    handlers: dict
    extents: list             # per sampled sample: list of (ptr, size)
    images: dict              # image field -> stats
    jpeg_samples: dict        # image field -> list of bytes (a few stored JPEGs)


def _read_file_facts(path, sample_limit=4096, jpeg_limit=24, seed=0):
    from ffcv_format import ImageField, Reader
    reader = Reader(path)
    try:
        n = reader.num_samples
        if n == 0:
            raise ValueError(f"{path!r} has no samples: nothing to load")
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(n, size=min(n, sample_limit), replace=False))
        meta = reader.metadata[picked]                     # a copy of the picked rows
        columns = []
        for name in reader.field_names:
            columns += [(ptrs, sizes) for _, ptrs, sizes in reader.extents(name, picked)]
        extents = [[(int(p[k]), int(s[k])) for p, s in columns if s[k] > 0] for k in range(picked.size)]
        images, jpegs = {}, {}
        for name in reader.field_names:
            handler = reader.handlers[name]
            if not isinstance(handler, ImageField):
                continue
            column = meta[name]
            modes = np.asarray(column['mode'])
            heights = np.asarray(column['height'], dtype=np.int64)
            widths = np.asarray(column['width'], dtype=np.int64)
            images[name] = {'sampled': int(picked.size),
                            'jpeg_share': float((modes == 0).mean()), 'raw_share': float((modes == 1).mean()),
                            'png_share': float((modes == 2).mean()),
                            'median_height': float(np.median(heights)), 'median_width': float(np.median(widths)),
                            'mean_pixels': float((heights * widths).mean()),
                            'heights': heights, 'widths': widths,
                            'channels': int(getattr(handler, 'channels', 3))}
            jpeg_rows = np.flatnonzero(modes == 0)[:jpeg_limit]
            jpegs[name] = [bytes(reader.stored_bytes(int(picked[k]), name)) for k in jpeg_rows]
        data_start = reader.data_region[0]
        facts = _FileFacts(path=os.fspath(path), file_size=reader.file_size, num_samples=n,
                           page_size=reader.page_size, data_start=data_start, data_end=reader.alloc_table_ptr,
                           fields={k: type(h).__name__ for k, h in reader.handlers.items()},
                           handlers=dict(reader.handlers), extents=extents, images=images, jpeg_samples=jpegs)
        del meta
        return facts
    finally:
        reader.close()


def memory_available():
    """``MemAvailable`` from /proc/meminfo in bytes (None where it cannot be read)."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def num_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


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
    return result


def storage_rate(storage, facts, *, os_cache, order, batch_size, process_cache_limit=None, memory=None):
    """The samples/s storage gives at these settings in steady state, with how it was found:
    ``(samples_s, mb_s, source, bytes_per_sample_read)`` (see the module docstring)."""
    bps = storage['bytes_per_sample']
    size, ps = facts.file_size, facts.page_size
    fits_ram = memory is None or size <= memory
    warm = storage['warm']['mb_s'] * 1e6

    def cold_rate():
        if order == 'sequential':
            return storage['cold_sequential']['mb_s'] * 1e6, 'disk, sequential'
        if order == 'quasi_random' or not os_cache or not storage.get('cold_random_samples'):
            key = 'cold_random_pages' if storage.get('cold_random_pages') else 'cold_sequential'
            return storage[key]['mb_s'] * 1e6, 'disk, pages in random order'
        cold = storage['cold_random_samples']
        return cold['samples_s'] * bps, 'disk, random samples'

    if os_cache:
        if fits_ram:
            rate, source, per_sample = warm, 'page cache (the file fits in the memory available)', bps
        else:
            rate, where = cold_rate()
            source, per_sample = f"{where} (the file is larger than the memory available)", bps
        return rate / per_sample, rate / 1e6, source, per_sample
    if process_cache_limit is None:
        process_cache_limit = min(size, (memory or 8 << 30) // 2)
    num_pages = max(1, -(-(facts.data_end - facts.data_start) // ps))
    cached_pages = max(1, int(process_cache_limit) // ps)
    if cached_pages >= num_pages:
        rate = warm if fits_ram else cold_rate()[0]
        return rate / bps, rate / 1e6, 'process cache (holds the whole file)', bps
    hit = cached_pages / num_pages
    if order == 'random':
        distinct = num_pages * (1 - (1 - 1 / num_pages) ** batch_size)
        per_sample = max(bps, distinct / batch_size * (1 - hit) * ps)
        how = (f"process cache of {cached_pages} of {num_pages} pages, order RANDOM: "
               f"{per_sample / 1e6:.2f} MB read per sample")
    else:
        per_sample = bps
        how = f"process cache of {cached_pages} of {num_pages} pages, each page read once an epoch"
    if fits_ram:
        rate, where = warm, 'from the page cache'
    else:
        rate, where = cold_rate()
    return rate / per_sample, rate / 1e6, f"{how}, {where}", per_sample


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
    return {'workers': workers, 'samples_s': count / took, 'batches': done, 'samples': count,
            'seconds': took, 'first_batch_s': first_batch_s, 'indices': n_indices}, first


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
        results[name] = {'images': len(blobs), 'decode_s': best['stored'], 'decode_q75_s': best['q75'],
                         'mean_bytes': float(np.mean([len(b) for b in blobs])),
                         'mean_bytes_q75': float(np.mean([len(b) for b in at_75])),
                         'mean_pixels': float(np.mean([d.shape[0] * d.shape[1] for d in decoded]))}
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
        result[key] = {'mb_s': mb_s, 'samples_s': mb_s * 1e6 / max(result['bytes_per_sample'], 1e-9)}
    return result


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
    return {'device': str(device), 'samples_s': batch_size * reps / took, 'steps': reps, 'seconds': took,
            'mode': 'forward' if inference else 'forward+backward', 'input_shape': list(x.shape)}


# ------------------------------------------------------------------------ the report

@dataclass
class Stage:
    """A measured stage: ``samples_s`` (None when skipped), ``mb_s`` where it applies, a note."""
    key: str
    label: str
    samples_s: float = None
    mb_s: float = None
    note: str = ''


@dataclass
class Recommendation:
    """A setting to change, why (with the measured figures it comes from), and the expected
    gain on the loader's throughput (a factor; None where there is nothing to gain)."""
    setting: str
    why: str
    expected_gain: float = None


@dataclass
class Report:
    """What :func:`diagnose` found. ``bottleneck`` is a key of :data:`STAGE_NAMES`;
    ``measurements`` holds every measured number; ``render()`` gives the text report and
    ``to_dict()``/``to_json()`` the machine-readable one."""
    path: str
    num_samples: int
    file_size: int
    fields: dict
    pipelines: dict
    pipeline_origin: str
    settings: dict
    measurements: dict
    stages: list
    bottleneck: str
    bottleneck_line: str
    recommendations: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def to_dict(self):
        return {'path': self.path, 'num_samples': self.num_samples, 'file_size': self.file_size,
                'fields': self.fields, 'pipelines': self.pipelines, 'pipeline_origin': self.pipeline_origin,
                'settings': self.settings, 'measurements': _plain(self.measurements),
                'stages': [dataclasses.asdict(s) for s in self.stages],
                'bottleneck': self.bottleneck, 'bottleneck_label': STAGE_NAMES[self.bottleneck],
                'bottleneck_line': self.bottleneck_line,
                'recommendations': [dataclasses.asdict(r) for r in self.recommendations], 'notes': self.notes}

    def to_json(self, indent=1):
        return json.dumps(self.to_dict(), indent=indent)

    def _field_text(self, name, kind):
        info = self.measurements.get('images', {}).get(name)
        if not info:
            return f"{name} ({kind})"
        modes = ', '.join(f"{mode} {info[mode + '_share']:.0%}" for mode in ('jpeg', 'raw', 'png')
                          if info[mode + '_share'])
        return f"{name} ({kind}: {modes}, median {info['median_width']:.0f}x{info['median_height']:.0f})"

    def render(self):
        s = self.settings
        lines = [f"ffcv doctor: {self.path}",
                 (f"  samples    {self.num_samples:,}, {human_size(self.file_size)} "
                  f"({human_size(self.file_size / self.num_samples)} per sample)"),
                 "  fields     " + ', '.join(self._field_text(n, k) for n, k in self.fields.items()),
                 f"  pipeline   {self.pipeline_origin}"]
        width = max(len(n) for n in self.pipelines)
        lines += [f"               {n:<{width}} = {text}" for n, text in self.pipelines.items()]
        lines.append(f"  settings   batch_size {s['batch_size']}, order {s['order'].upper()}, "
                     f"os_cache={s['os_cache']}, {_threads(s['workers'])} ({s['cores']} cores), "
                     f"device {s['device']}")
        lines.append('')
        label_width = max(len(st.label) for st in self.stages)
        lines.append(f"  {'stage':<{label_width}}  {'samples/s':>12}  {'MB/s':>9}")
        for st in self.stages:
            if st.samples_s is None:
                lines.append(f"  {st.label:<{label_width}}  {st.note}")
                continue
            mb = f"{st.mb_s:>9,.0f}" if st.mb_s is not None else f"{'':>9}"
            note = f"  {st.note}" if st.note else ''
            lines.append(f"  {st.label:<{label_width}}  {_num(st.samples_s):>12}  {mb}{note}")
        lines += ['', self.bottleneck_line]
        if self.recommendations:
            lines += ['', 'What to change:']
            for r in self.recommendations:
                gain = f" (expected: {_gain(r.expected_gain)})" if r.expected_gain else ''
                lines.append(f"  - {r.setting}{gain}: {r.why}")
        if self.notes:
            lines += ['', 'Notes:']
            lines += [f"  - {note}" for note in self.notes]
        return '\n'.join(lines)


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _num(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _gain(factor):
    return f"{factor:.2f}x" if factor < 10 else f"{factor:.0f}x"


def _threads(n):
    return f"{n} worker thread" + ('s' if n != 1 else '')


# ------------------------------------------------------------------------ diagnosis

def _crop_size(ops):
    """The output (height, width) of a pipeline's cropping decoder, or None."""
    for op in ops or []:
        size = getattr(op, 'output_size', None)
        if size is not None:
            try:
                return tuple(int(v) for v in size)
            except (TypeError, ValueError):
                return None
    return None


def _has_device_copy(pipelines):
    from ffcv_ops import PipelineSpec, ToDevice
    for value in pipelines.values():
        ops = ([value.decoder] + list(value.transforms)) if isinstance(value, PipelineSpec) else (value or [])
        if any(isinstance(op, ToDevice) and op.device.type == 'cuda' for op in ops if op is not None):
            return True
    return False


def suggested_max_resolution(output_size):
    """A storage resolution for crops of ``output_size``: 256 for 224 (the crop ratio of
    ImageNet training, 224/256), rounded up to a multiple of 8."""
    side = max(output_size) * 256 / 224
    return int(math.ceil(side / 8) * 8)


def _analyse(facts, storage, decode, settings, pipelines_now, jpeg, transfer, model, memory):
    """Stages, bottleneck and recommendations from the measurements."""
    workers, cores, batch_size = settings['workers'], settings['cores'], settings['batch_size']
    order, os_cache = settings['order'], settings['os_cache']
    limit = settings.get('process_cache_limit')
    stages, notes, recs = [], [], []

    def storage_at(**changes):
        options = {'os_cache': os_cache, 'order': order, 'batch_size': batch_size, 'process_cache_limit': limit}
        options.update(changes)
        return storage_rate(storage, facts, memory=memory, **options)

    # ---- storage
    cold_note = {True: '', False: '(not evicted: read from memory?)'}.get(storage['evicted'],
                                                                        '(eviction not confirmed)')
    bps = storage['bytes_per_sample']
    for key, label in (('cold_sequential', 'storage: disk, sequential (cold)'),
                       ('cold_random_pages', f"storage: disk, random {human_size(facts.page_size)} pages (cold)"),
                       ('cold_random_samples', 'storage: disk, random samples (cold)'),
                       ('warm', 'storage: page cache (warm)')):
        m = storage.get(key)
        if m:
            stages.append(Stage('storage', label, m['samples_s'], m['mb_s'],
                                cold_note if key.startswith('cold') else ''))
    storage_s, storage_mb, storage_source, per_sample = storage_at()
    configured = decode.get('configured')
    if configured and configured['samples_s'] < 0.8 * decode['chosen']['samples_s'] \
            and configured['samples_s'] < storage_s:
        storage_s = configured['samples_s']
        storage_source += f"; the loader as configured measured {_num(storage_s)} samples/s"
    storage_eff = {'samples_s': storage_s, 'mb_s': storage_mb, 'source': storage_source,
                   'bytes_read_per_sample': per_sample}
    stages.append(Stage('storage', 'storage at these settings', storage_s, None, storage_source))

    # ---- decode
    one, chosen, all_cores = decode['one'], decode['chosen'], decode.get('all_cores')
    stages.append(Stage('decode', f"decode + augment, {_threads(1)}", one['samples_s']))
    if workers != 1:
        stages.append(Stage('decode', f"decode + augment, {_threads(workers)}", chosen['samples_s']))
    if all_cores:
        stages.append(Stage('decode', f"decode + augment, {_threads(cores)} (all cores)", all_cores['samples_s']))
    if configured:
        stages.append(Stage('loader', f"loader as configured (os_cache={os_cache})", configured['samples_s']))
    decode_s = chosen['samples_s']

    # ---- transfer, model
    transfer_s = model_s = None
    if transfer.get('skipped'):
        stages.append(Stage('transfer', 'host-to-device transfer', None, None, transfer['skipped']))
    else:
        pinned = _has_device_copy(pipelines_now)
        stages.append(Stage('transfer', f"transfer to {transfer['device']}, pinned", transfer['pinned']['samples_s'],
                            transfer['pinned']['mb_s'], '(the loader with ToDevice)' if pinned else ''))
        stages.append(Stage('transfer', f"transfer to {transfer['device']}, pageable",
                            transfer['pageable']['samples_s'], transfer['pageable']['mb_s'],
                            '' if pinned else '(batch.to(device) in your loop)'))
        transfer_s = transfer['pinned' if pinned else 'pageable']['samples_s']
    if model.get('skipped'):
        stages.append(Stage('model', 'model', None, None, model['skipped']))
    else:
        stages.append(Stage('model', f"model {model['name']} on {model['device']}, {model['mode']}",
                            model['samples_s']))
        model_s = model['samples_s']

    rates = {'storage': storage_s, 'decode': decode_s}
    if transfer_s is not None:
        rates['transfer'] = transfer_s
    if model_s is not None:
        rates['model'] = model_s
    bottleneck = min(rates, key=rates.get)
    current = rates[bottleneck]

    def overall(stage, new_rate):
        others = [r for k, r in rates.items() if k != stage]
        return min([new_rate] + others) / current

    # ---- the bottleneck line
    where = 'from page cache' if storage_source.startswith('page cache') else f"({storage_source})"
    if bottleneck == 'decode':
        line = (f"Bottleneck: decode + augment ({_threads(workers)}: {_num(decode_s)} samples/s; "
                f"storage gives {_num(storage_s)} samples/s {where})")
    elif bottleneck == 'storage':
        line = (f"Bottleneck: storage read ({_num(storage_s)} samples/s: {storage_source}; "
                f"decode + augment on {_threads(workers)} gives {_num(decode_s)} samples/s)")
    elif bottleneck == 'transfer':
        line = (f"Bottleneck: host-to-device transfer ({_num(transfer_s)} samples/s to {transfer['device']}; "
                f"data loading gives {_num(min(storage_s, decode_s))} samples/s)")
    else:
        data = min(r for k, r in rates.items() if k != 'model')
        line = (f"Bottleneck: the model ({_num(model_s)} samples/s on {model['device']}); data loading gives "
                f"{_num(data)} samples/s ({data / model_s:.1f}x what the model takes): data loading is not "
                f"your bottleneck")

    # ---- scaling (whatever the bottleneck)
    for measured, threads in ((chosen, workers), (all_cores, cores)):
        if measured and threads > 1:
            scaling = measured['samples_s'] / one['samples_s']
            if scaling < POOR_SCALING * threads:
                notes.append(f"poor scaling: {_threads(threads)} give {_num(measured['samples_s'])} samples/s, "
                             f"{scaling:.2f}x one thread ({_num(one['samples_s'])}; ideal {threads}x). Other "
                             f"processes may be using the cores (see top), or the machine has fewer physical "
                             f"cores than logical ones")
                break

    # ---- recommendations
    if bottleneck == 'decode':
        if all_cores and workers < cores:
            gain = all_cores['samples_s'] / decode_s
            if gain >= MIN_GAIN:
                recs.append(Recommendation(
                    f"num_workers={cores} (--workers {cores})",
                    f"{_threads(cores)} measured {_num(all_cores['samples_s'])} samples/s against "
                    f"{_num(decode_s)} with {workers}", round(overall('decode', all_cores['samples_s']), 2)))
            elif not any(note.startswith('poor scaling') for note in notes):
                notes.append(f"more worker threads did not help here: {_threads(cores)} measured "
                             f"{_num(all_cores['samples_s'])} samples/s against {_num(decode_s)} with {workers}")
        t_sample = 1.0 / one['samples_s']            # one thread's time per sample
        for name, info in facts.images.items():
            ops = pipelines_now.get(name)
            if ops is None or name not in jpeg or not info['jpeg_share']:
                continue
            j = jpeg[name]
            # JPEG decoding's part of one thread's time per sample (capped: the two are timed apart)
            jpeg_time = min(j['decode_s'] * info['jpeg_share'], 0.9 * t_sample)
            measured = (f"JPEG decoding measured {j['decode_s'] * 1e3:.2f} ms per image of field {name!r} "
                        f"({j['images']} images), {jpeg_time / t_sample:.0%} of one thread's "
                        f"{t_sample * 1e3:.2f} ms per sample")

            def gain_after(saved):
                return t_sample / (t_sample - saved)

            crop = _crop_size(ops if isinstance(ops, (list, tuple)) else [])
            if crop is not None:
                from ffcv_format.fields.image import target_size
                target = suggested_max_resolution(crop)
                sizes = [target_size(int(h), int(w), max_resolution=target)
                         for h, w in zip(info['heights'], info['widths'])]
                ratio = sum(h * w for h, w in sizes) / float((info['heights'] * info['widths']).sum())
                gain = gain_after(jpeg_time * (1 - ratio))
                if ratio < 0.9 and gain >= MIN_GAIN:
                    recs.append(Recommendation(
                        f"store at max_resolution={target} (ffcv convert --max-resolution {target})",
                        f"images are stored at a median {info['median_width']:.0f}x{info['median_height']:.0f} "
                        f"for crops of {crop[1]}x{crop[0]}; at most {target} px keeps {ratio:.0%} of the pixels "
                        f"to decode; {measured} (a lower bound: smaller crops also resize faster)",
                        round(overall('decode', decode_s * gain), 2)))
            if j['decode_q75_s'] < 0.9 * j['decode_s']:
                gain = gain_after(jpeg_time * (1 - j['decode_q75_s'] / j['decode_s']))
                if gain >= MIN_GAIN:
                    recs.append(Recommendation(
                        "lower JPEG quality (ffcv convert --jpeg-quality 75)",
                        f"the same images re-encoded at quality 75 decoded in {j['decode_q75_s'] * 1e3:.2f} ms "
                        f"({j['mean_bytes_q75'] / 1024:.0f} KiB against {j['mean_bytes'] / 1024:.0f} KiB "
                        f"stored); {measured}", round(overall('decode', decode_s * gain), 2)))
            if info['jpeg_share'] >= 0.5:
                gain = gain_after(jpeg_time * 0.5)       # half of the JPEG images become raw
                moved = facts.num_samples * info['jpeg_share'] * 0.5
                new_size = facts.file_size + moved * (j['mean_pixels'] * info['channels'] - j['mean_bytes'])
                fits = memory is None or new_size <= memory
                new_storage = (storage['warm']['mb_s'] * 1e6 / (new_size / facts.num_samples) if fits
                               else storage_s * facts.file_size / new_size)
                if gain >= MIN_GAIN:
                    after = dict(rates, decode=decode_s * gain, storage=new_storage)
                    recs.append(Recommendation(
                        "store half the images raw (ffcv convert --write-mode proportion "
                        "--compress-probability 0.5)",
                        f"raw images need no decoding; {measured}; the file grows to about {human_size(new_size)}"
                        + ('' if fits else ', more than the memory available'),
                        round(min(after.values()) / current, 2)))
    elif bottleneck == 'storage':
        if not os_cache and (memory is None or facts.file_size <= memory):
            new = decode['chosen']['samples_s']       # that loader is os_cache=True, reading memory
            recs.append(Recommendation(
                "os_cache=True (--os-cache), or a process_cache_limit of at least the file's size",
                f"the file ({human_size(facts.file_size)}) fits in the memory available "
                f"({human_size(memory) if memory else 'unknown'}); the loader with os_cache=True measured "
                f"{_num(new)} samples/s against {_num(configured['samples_s'])} as configured",
                round(overall('storage', new), 2)))
        quasi = decode.get('configured_quasi')
        if not os_cache and order == 'random' and quasi:
            new = quasi['samples_s']
            if new / storage_s >= MIN_GAIN:
                recs.append(Recommendation(
                    "order=OrderOption.QUASI_RANDOM (--order quasi_random)",
                    f"with RANDOM the process cache reads about {per_sample / 1e6:.2f} MB per sample "
                    f"({bps / 1e3:.1f} kB stored per sample); the loader as configured but with QUASI_RANDOM, "
                    f"which reads each page once an epoch, measured {_num(new)} samples/s against "
                    f"{_num(configured['samples_s'])}", round(overall('storage', new), 2)))
        if os_cache and memory is not None and facts.file_size > memory and order == 'random':
            new = storage_at(os_cache=False, order='quasi_random')[0]
            if new / storage_s >= MIN_GAIN:
                recs.append(Recommendation(
                    "os_cache=False with order=OrderOption.QUASI_RANDOM",
                    f"the file ({human_size(facts.file_size)}) is larger than the memory available "
                    f"({human_size(memory)}); random samples from disk measured {_num(storage_s)} samples/s, "
                    f"pages in random order {_num(new)} samples/s", round(overall('storage', new), 2)))
        if not recs:
            recs.append(Recommendation(
                "a faster disk, or a smaller file (lower max_resolution or JPEG quality)",
                f"storage gives {_num(storage_s)} samples/s ({storage_source}) at {bps / 1e3:.1f} kB per "
                f"sample", None))
    elif bottleneck == 'transfer':
        pinned = _has_device_copy(pipelines_now)
        if not pinned:
            new = transfer['pinned']['samples_s']
            recs.append(Recommendation(
                f"end the pipelines with ToDevice('{transfer['device']}') (pinned memory, copies overlapped)",
                f"pinned copies measured {transfer['pinned']['mb_s']:,.0f} MB/s against "
                f"{transfer['pageable']['mb_s']:,.0f} MB/s pageable", round(overall('transfer', new), 2)))
        floats = transfer['float_image_bytes_per_sample']
        if floats > 0.5 * transfer['bytes_per_sample']:
            gain = transfer['bytes_per_sample'] / (transfer['bytes_per_sample'] - floats * 3 / 4)
            recs.append(Recommendation(
                "copy uint8 images and normalize on the GPU (ToDevice before NormalizeImage)",
                f"a batch is {transfer['bytes_per_sample'] / 1e3:.1f} kB per sample, {floats / 1e3:.1f} kB of "
                f"it float images, 4x the bytes of uint8 ones", round(overall('transfer', transfer_s * gain), 2)))
    else:
        recs.append(Recommendation(
            "nothing in data loading",
            f"the model takes {_num(model_s)} samples/s on {model['device']}; data loading gives "
            f"{_num(min(r for k, r in rates.items() if k != 'model'))}", None))

    # ---- first epoch, eviction
    if storage_source.startswith(('page cache', 'process cache (holds')):
        first_epoch = None
        if order == 'random' and storage.get('cold_random_samples'):
            first_epoch = storage['cold_random_samples']['samples_s'] if os_cache else \
                storage['cold_random_pages']['samples_s']
        elif order == 'quasi_random' and storage.get('cold_random_pages'):
            first_epoch = storage['cold_random_pages']['samples_s']
        elif storage.get('cold_sequential'):
            first_epoch = storage['cold_sequential']['samples_s']
        if first_epoch is not None and first_epoch < min(r for k, r in rates.items() if k != 'storage'):
            notes.append(f"the first epoch reads from disk: about {_num(first_epoch)} samples/s cold, slower "
                         f"than the other stages; later epochs come from memory")
    if model_s is not None and str(model['device']).startswith('cpu'):
        notes.append("the model was timed on the CPU, alone: in training it shares the cores with the "
                     "loader's worker threads, so both will be slower than measured")
    if storage['not_evicted_because']:
        notes.append(f"cold storage figures: the file could not be dropped from the page cache "
                     f"({storage['not_evicted_because']}); they may be reads from memory")
    if configured and configured['samples_s'] < 0.7 * min(rates.values()):
        notes.append(f"the loader as configured gives {_num(configured['samples_s'])} samples/s, below every "
                     f"stage measured alone")
    return stages, bottleneck, line, recs, notes, storage_eff, rates


def diagnose(path, pipelines=None, *, workers=None, batch_size=256, batches=None, order='random',
             os_cache=True, process_cache_limit=None, model=None, inference=False, device=None,
             evict=True, storage_seconds=1.0, loader_seconds=1.5, progress=None):
    """Measure every stage of loading ``path`` with ``pipelines`` here; return a :class:`Report`.

    - ``pipelines``: None (a default per field kind), a dict as the Loader takes (or a function
      returning one), or ``--pipeline`` strings (see :func:`parse_pipelines`).
    - ``workers``: worker threads (default: one per core); ``batch_size`` (capped at the
      number of samples); ``batches``: batches timed per loader measurement (default: about
      ``loader_seconds`` each); ``order``: 'sequential', 'random' or 'quasi_random';
      ``os_cache`` and ``process_cache_limit`` as the Loader's.
    - ``model``: a torch module, a function returning one, or 'MODULE:CALLABLE'; timed on
      ``device`` (default: 'cuda' if available, else 'cpu') forward + backward, or forward
      only with ``inference=True``.
    - ``evict=False`` keeps the file in the page cache (the cold figures are then not cold).
    - ``progress``: a function called with a line before each measurement.

    >>> report = diagnose('train.beton', workers=1, batches=4)        # doctest: +SKIP
    >>> report.bottleneck, [r.setting for r in report.recommendations]  # doctest: +SKIP
    """
    say = progress or (lambda line: None)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, 'No such file or directory', path)
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder, not a .beton file")
    order = str(getattr(order, 'name', order)).lower().replace('-', '_')
    if order not in _ORDERS:
        raise ValueError(f"order must be one of {', '.join(_ORDERS)}, got {order!r}")
    cores = num_cores()
    workers = cores if workers in (None, -1) else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers}")
    if batches is not None and int(batches) < 1:
        raise ValueError(f"batches must be a positive integer, got {batches}")

    say("reading the file's tables")
    facts = _read_file_facts(path)
    choice = _choice_from_argument(pipelines, facts.handlers)
    import torch
    cuda = torch.cuda.is_available()
    device = str(device or ('cuda' if cuda else 'cpu'))
    try:
        device_type = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a torch device (e.g. cuda, cuda:1, cpu)") from None
    if device_type == 'cuda' and not cuda:
        raise ValueError(f"device {device!r}: torch finds no CUDA device here")
    batch_size = max(1, min(int(batch_size), facts.num_samples))
    memory = memory_available()
    model_object = model_name = None
    if model is not None:
        model_object, model_name = load_model(model)

    say('reading the file from disk (cold) and from the page cache (warm)')
    storage = measure_storage(facts, seconds=storage_seconds, evict=evict)

    # decode measurements read warm data: the whole file if it was read, else a warmed subset
    indices = None
    if storage['warm_range'] < facts.data_end:
        indices = _warm_subset(facts, batch_size, batches)
    common = {'batch_size': min(batch_size, len(indices)) if indices is not None else batch_size,
              'order': order, 'batches': batches, 'seconds': loader_seconds, 'indices': indices}
    decode = {}
    say(f"decoding with {_threads(1)}")
    decode['one'], first = measure_loader(path, choice.make, workers=1, keep_first=True, **common)
    if workers != 1:
        say(f"decoding with {_threads(workers)}")
        decode['chosen'], _ = measure_loader(path, choice.make, workers=workers, **common)
    else:
        decode['chosen'] = decode['one']
    if workers < cores:
        say(f"decoding with {_threads(cores)} (all cores)")
        decode['all_cores'], _ = measure_loader(path, choice.make, workers=cores, **common)
    if not os_cache:
        say('the loader as configured (os_cache=False)')
        decode['configured'], _ = measure_loader(path, choice.make, workers=workers, batch_size=batch_size,
                                                 order=order, os_cache=False, batches=batches,
                                                 seconds=loader_seconds, process_cache_limit=process_cache_limit)
        if order == 'random' and decode['configured']['samples_s'] < 0.8 * decode['chosen']['samples_s']:
            say('the loader as configured with order QUASI_RANDOM')
            decode['configured_quasi'], _ = measure_loader(
                path, choice.make, workers=workers, batch_size=batch_size, order='quasi_random', os_cache=False,
                batches=batches, seconds=loader_seconds, process_cache_limit=process_cache_limit)
    jpeg = measure_jpeg_decoding(facts)

    if device_type != 'cuda':
        transfer = {'skipped': 'no CUDA device: skipped' if not cuda else f"device {device}: skipped"}
    else:
        say(f"copying a batch to {device}")
        transfer = measure_transfer(first, device, common['batch_size'])
    if model_object is None:
        model_result = {'skipped': 'no --model given' if cuda else 'no CUDA device: skipped (no --model given)'}
    else:
        say(f"timing the model on {device}")
        tensors = _as_tensors(first)
        if not tensors:
            raise ValueError("--model: the pipelines give no tensor to feed the model (end them with ToTensor())")
        example = next((t for t in tensors if t.dim() >= 2), tensors[0])   # images rather than labels
        model_result = measure_model(model_object, example, device, common['batch_size'], inference=inference)
        model_result['name'] = model_name

    settings = {'workers': workers, 'cores': cores, 'batch_size': common['batch_size'], 'batches': batches,
                'order': order, 'os_cache': bool(os_cache), 'process_cache_limit': process_cache_limit,
                'device': device, 'cuda_available': cuda, 'memory_available': memory,
                'samples_measured': 'all' if indices is None else len(indices)}
    pipelines_now = choice.make()
    stages, bottleneck, line, recs, notes, storage_eff, rates = _analyse(
        facts, storage, decode, settings, pipelines_now, jpeg, transfer, model_result, memory)
    images = {name: {k: v for k, v in info.items() if k not in ('heights', 'widths')}
              for name, info in facts.images.items()}
    measurements = {'storage': dict(storage, at_settings=storage_eff), 'decode': decode, 'jpeg': jpeg,
                    'images': images, 'transfer': transfer, 'model': model_result, 'stage_rates': rates}
    return Report(path=path, num_samples=facts.num_samples, file_size=facts.file_size, fields=facts.fields,
                  pipelines=choice.described, pipeline_origin=choice.origin, settings=settings,
                  measurements=measurements, stages=stages, bottleneck=bottleneck, bottleneck_line=line,
                  recommendations=recs, notes=notes)


def _warm_subset(facts, batch_size, batches):
    """Sample ids for the decode measurements when the file was not read whole: a random
    subset, its data read now so that decoding is timed from memory."""
    from ffcv_format import Reader
    wanted = batch_size * (1 + (batches or 20))
    rng = np.random.default_rng(1)
    indices = np.sort(rng.choice(facts.num_samples, size=min(facts.num_samples, wanted), replace=False))
    reader = Reader(facts.path)
    try:
        fd = os.open(facts.path, os.O_RDONLY)
        try:
            for name in reader.field_names:
                for _, pointers, sizes in reader.extents(name, indices):
                    for p, size in zip(pointers.tolist(), sizes.tolist()):
                        os.pread(fd, size, p)
        finally:
            os.close(fd)
    finally:
        reader.close()
    return indices


# ------------------------------------------------------------------------ command line

DOCTOR_HELP = """\
Find what limits loading FILE with your pipeline on this machine. Measures, each on its
own: reading the file from disk (cold: the file is first dropped from the page cache;
sequential, random pages, random samples) and from the page cache (warm); decoding and
augmenting with the Loader on 1 worker thread and on all cores; and with a CUDA device,
copying a batch to it (pinned and pageable) and your model's speed on such batches.
Then names the slowest stage and the settings to change, each with the measured figures
it comes from and its expected gain.

Pipelines are data (JSON or YAML), never code (--pipeline, repeatable):
  FIELD=[ITEM,...]    the operations of one field, each ITEM {"op": NAME, ARG: VALUE, ...}
                      or "NAME" (no arguments); FIELD=NAME,NAME,... for operations without
                      arguments; FIELD=None leaves the field out; FIELD= gives it the
                      Loader's default decoder. NAMEs are the entry points of the group
                      ffcv.ops: ffcv_ops' operations and those of installed plugins. Lists
                      become tuples; "float16" given for a dtype argument is a numpy dtype.
  --pipelines FILE    a JSON or YAML file (or text) of {FIELD: [ITEM, ...], ...}.
  MODULE:FUNCTION     (or FILE.py:FUNCTION) a function returning the pipelines dict as
                      the Loader takes it.
  none given          image fields: RandomResizedCropRGBImageDecoder(output_size=(224,
                      224)), RandomHorizontalFlip, ToTensor, ToTorchImage; int and float
                      fields: IntDecoder/FloatDecoder, ToTensor; others: default.
  Fields not named get the Loader's default decoder.

A model (--model MODULE:CALLABLE or FILE.py:CALLABLE) is a callable with no arguments
returning a torch.nn.Module; it gets the pipelines' first output of 2 or more dimensions
(the images; as float32 if it is an integer tensor). Without CUDA it is timed on the CPU.

Dropping FILE from the page cache makes other readers of it read it from disk again
(--no-evict keeps it, and the cold figures are then not cold).

examples:
  ffcv doctor train.beton
  ffcv doctor train.beton --workers 8 --batches 20
  ffcv doctor train.beton --pipeline 'image=[{"op": "RandomResizedCropRGBImageDecoder", "output_size": [160, 160]}, "RandomHorizontalFlip", "ToTensor", "ToTorchImage"]' --pipeline label=IntDecoder,ToTensor
  ffcv doctor train.beton --pipelines pipelines.yaml
  ffcv doctor train.beton --pipeline train.py:make_pipelines --model torchvision.models:resnet50
  ffcv doctor train.beton --no-os-cache --order quasi_random --json > report.json
"""


def _order(text):
    value = text.strip().lower().replace('-', '_')
    if value not in _ORDERS:
        raise argparse.ArgumentTypeError(f"invalid order {text!r} (choose from {', '.join(_ORDERS)})")
    return value


def add_commands(subparsers):
    """Add ``doctor`` to an argparse subparsers object."""
    p = subparsers.add_parser('doctor', help="find what limits loading a .beton file (disk, decoding, "
                                             "transfer, model) and what to change",
                              description=DOCTOR_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('file', metavar='FILE')
    p.add_argument('--pipeline', '--pipelines', action='append', metavar='SPEC',
                   help='FIELD=[ITEM,...] (repeatable), a JSON/YAML FILE of {FIELD: [ITEM,...]}, or '
                        'MODULE:FUNCTION / FILE.py:FUNCTION (see above)')
    p.add_argument('--workers', type=positive_int_argument, metavar='N', help='worker threads (default: one per core)')
    p.add_argument('--batch-size', type=positive_int_argument, default=256, metavar='N',
                   help='samples per batch (default: 256, at most the number of samples)')
    p.add_argument('--batches', type=positive_int_argument, metavar='N',
                   help='batches timed per loader measurement (default: about 1.5 s of them)')
    p.add_argument('--order', type=_order, default='random', metavar='ORDER',
                   help='sequential, random (default) or quasi_random')
    p.add_argument('--os-cache', action=argparse.BooleanOptionalAction, default=True,
                   help='read through the OS page cache (default) or the loader\'s own process cache')
    p.add_argument('--process-cache-limit', type=size_argument, metavar='SIZE',
                   help='with --no-os-cache: bytes of the process cache (default: half the memory available)')
    p.add_argument('--model', metavar='SPEC', help='MODULE:CALLABLE or FILE.py:CALLABLE returning a torch module')
    p.add_argument('--inference', action='store_true', help='time the model forward only (default: forward + '
                                                           'backward)')
    p.add_argument('--device', metavar='DEV', help='cuda, cuda:N or cpu (default: cuda if available)')
    p.add_argument('--no-evict', action='store_true', help='do not drop FILE from the page cache')
    p.add_argument('--json', action='store_true', help='print the full report as JSON')
    p.add_argument('-q', '--quiet', action='store_true', help='no progress lines on stderr')
    p.set_defaults(run=run_doctor)


def run_doctor(args):
    def progress(line):
        if not args.quiet:
            print(f"ffcv doctor: {line}...", file=sys.stderr, flush=True)

    if args.process_cache_limit is not None and args.os_cache:
        raise ValueError("--process-cache-limit applies to the process cache: add --no-os-cache")
    report = diagnose(args.file, args.pipeline, workers=args.workers, batch_size=args.batch_size,
                      batches=args.batches, order=args.order, os_cache=args.os_cache,
                      process_cache_limit=args.process_cache_limit, model=args.model, inference=args.inference,
                      device=args.device, evict=not args.no_evict, progress=progress)
    print(report.to_json() if args.json else report.render())
    return 0
