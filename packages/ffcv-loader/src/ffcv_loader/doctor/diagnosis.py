""":func:`diagnose`: measure every stage of loading a file here, analyse, return a :class:`Report`."""
import os
from dataclasses import asdict

import numpy as np

from ..memory import available_memory
from .analysis import _threads, analyse
from .file_facts import num_cores, read_file_facts
from .measurements import (Measurements, Skipped, _as_tensors, load_model, measure_jpeg_decoding,
                           measure_loader, measure_model, measure_storage, measure_transfer)
from .pipelines import _choice_from_argument, crop_size, has_device_copy
from .report import Report

# Wrong values a user gave (a pipeline that is not a list of operations, a model that is not a
# module) raise ValueError, not TypeError: the ffcv command line prints a ValueError as one
# line and shows a TypeError's traceback, as a bug of ffcv.

ORDERS = ('sequential', 'random', 'quasi_random')


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
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    cores = num_cores()
    workers = cores if workers in (None, -1) else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers}")
    if batches is not None and int(batches) < 1:
        raise ValueError(f"batches must be a positive integer, got {batches}")

    say("reading the file's tables")
    facts = read_file_facts(path)
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
    memory = available_memory()
    model_object = model_name = None
    if model is not None:
        model_object, model_name = load_model(model)

    say('reading the file from disk (cold) and from the page cache (warm)')
    storage = measure_storage(facts, seconds=storage_seconds, evict=evict)

    # decode measurements read warm data: the whole file if it was read, else a warmed subset
    indices = None
    if storage.warm_range < facts.data_end:
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
        if order == 'random' and decode['configured'].samples_s < 0.8 * decode['chosen'].samples_s:
            say('the loader as configured with order QUASI_RANDOM')
            decode['configured_quasi'], _ = measure_loader(
                path, choice.make, workers=workers, batch_size=batch_size, order='quasi_random', os_cache=False,
                batches=batches, seconds=loader_seconds, process_cache_limit=process_cache_limit)
    jpeg = measure_jpeg_decoding(facts)

    if device_type != 'cuda':
        transfer = Skipped('no CUDA device: skipped' if not cuda else f"device {device}: skipped")
    else:
        say(f"copying a batch to {device}")
        transfer = measure_transfer(first, device, common['batch_size'])
    if model_object is None:
        model_result = Skipped('no --model given' if cuda else 'no CUDA device: skipped (no --model given)')
    else:
        say(f"timing the model on {device}")
        tensors = _as_tensors(first)
        if not tensors:
            raise ValueError("--model: the pipelines give no tensor to feed the model (end them with ToTensor())")
        example = next((t for t in tensors if t.dim() >= 2), tensors[0])   # images rather than labels
        model_result = measure_model(model_object, example, device, common['batch_size'], inference=inference)
        model_result.name = model_name

    settings = {'workers': workers, 'cores': cores, 'batch_size': common['batch_size'], 'batches': batches,
                'order': order, 'os_cache': bool(os_cache), 'process_cache_limit': process_cache_limit,
                'device': device, 'cuda_available': cuda, 'memory_available': memory,
                'samples_measured': 'all' if indices is None else len(indices)}
    pipelines_now = choice.make()
    crops = {name: crop_size(ops if isinstance(ops, (list, tuple)) else [])
             for name, ops in pipelines_now.items() if ops is not None}
    result = analyse(Measurements(file=facts, storage=storage, decode=decode, jpeg=jpeg, transfer=transfer,
                                  model=model_result, settings=settings, memory=memory, crops=crops,
                                  device_copy=has_device_copy(pipelines_now)))
    images = {name: {k: v for k, v in info.items() if k not in ('heights', 'widths')}
              for name, info in facts.images.items()}
    measurements = {'storage': dict(asdict(storage), at_settings=result.storage_at_settings),
                    'decode': {key: asdict(run) for key, run in decode.items()},
                    'jpeg': {name: asdict(timing) for name, timing in jpeg.items()}, 'images': images,
                    'transfer': asdict(transfer), 'model': asdict(model_result), 'stage_rates': result.rates}
    return Report(path=path, num_samples=facts.num_samples, file_size=facts.file_size, fields=facts.fields,
                  pipelines=choice.described, pipeline_origin=choice.origin, settings=settings,
                  measurements=measurements, stages=result.stages, bottleneck=result.bottleneck,
                  bottleneck_line=result.bottleneck_line, recommendations=result.recommendations,
                  notes=result.notes)


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
