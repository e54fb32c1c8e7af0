"""The Loader: FFCV 1.0's ``ffcv.loader.Loader``, with its arguments and meaning."""
import copy
import os
import secrets
import threading
import warnings
import weakref

import numpy as np
from ffcv_format import Reader
from ffcv_format.writer import default_num_workers
from ffcv_ops import Compiler, Operation
from ffcv_ops.pipeline import CHUNK_SIZE, Pipeline, PipelineSpec

from .memory import OSCacheManager, ProcessCacheManager, available_memory, remote_memory_manager, sample_pages
from .orders import OrderOption, QuasiRandom, Random, Sequential, _order_class, make_order
from .scheduler import CudaPrefetch, EpochRun
from .elastic import Stage, drop_unconsumed, remaining_positions, split_remainder, stage_batches
from .loader_state import make_state, read_resume_point
from .orders import deals_global_order

__all__ = ['Loader']

_NO_PAGES = np.zeros(0, dtype=np.int64)
#: from this many samples, a loader with a RANDOM or QUASI_RANDOM order computes epoch 0's
#: order in a thread while it is being made (numpy's permutation runs without the GIL, beside
#: numba's start-up); its first batch needs that order, 50-90 ms at 1.28M samples here
_ORDER_AHEAD_SAMPLES = 1 << 16



class Loader:
    """Loads batches from a ``.beton`` file, decoding and augmenting them in worker threads.

    Arguments (FFCV 1.0's):

    - ``fname``: the file: a path, or the URL of a file on object storage (``s3://``,
      ``gs://``, ``https://``, any fsspec URL; ``pip install 'ffcv-loader[s3]'``, or ``gcs``,
      ``http``, ``azure``; see docs/remote.md).
    - ``batch_size``: samples per batch.
    - ``num_workers``: worker threads (``-1``, or any value below 1 as in FFCV 1.0:
      ``Compiler.set_num_threads``'s value if it was called, else one per core this process
      may use).
    - ``os_cache``: ``True`` (the default, unless the environment variable
      ``FFCV_DEFAULT_CACHE_PROCESS=1`` as in FFCV 1.0) reads through the OS page cache (memory
      map, shared by the processes on a machine); ``False`` uses the loader's own bounded
      page cache, read ahead with threads (``process_cache_limit`` bytes, default half the
      free memory). For a remote file, ``True`` reads through the memory map of the
      machine's copy in ``cache_dir`` (the OS page cache holds it); without ``cache_dir``
      a remote file always uses the process cache, fetched by range requests.
    - ``order``: ``OrderOption.SEQUENTIAL``, ``RANDOM`` or ``QUASI_RANDOM`` (random, but
      reading few pages at a time: for the process cache), or a ``TraversalOrder`` subclass;
      ``order_kwargs``: keyword arguments for its constructor (e.g. ``pages_per_group`` of
      QUASI_RANDOM).
    - ``distributed``: each ``torch.distributed`` rank gets its share of every epoch (every
      sample once across ranks; the last samples are repeated so that ranks have equal
      lengths, as torch's DistributedSampler does).
    - ``seed``: the order's and the augmentations' seed. Same seed, same batches, whatever
      ``num_workers`` is. ``None``: a fresh random seed (0 when distributed, so ranks agree).
    - ``indices``: the sample ids to use (a subset, in this order for SEQUENTIAL).
    - ``pipelines``: per field, a list of operations (the decoder is optional; a
      ``torch.nn.Module`` is wrapped in ``ModuleWrapper``), ``None`` to leave the field out,
      or a ``PipelineSpec`` for an extra output made from a field. Fields not named (and
      empty lists) get FFCV 1.0's default pipeline: the field's default decoder, then
      ``ToTensor()``.
    - ``custom_fields``: field classes for application-defined fields (type 255) by name.
    - ``drop_last``: drop the last, partial batch of an epoch.
    - ``batches_ahead``: batches prepared ahead of the one being consumed.
    - ``recompile``: call every operation's ``generate_code()`` again at each epoch (for
      operations whose code captures attributes that change between epochs). The code is
      generated when the loader is made (``loader.code``; errors in a pipeline surface
      there), as in FFCV 1.0.

    Remote files (keyword-only; ignored for a local file):

    - ``storage_options``: passed to fsspec (credentials, ``endpoint_url``, ``client_kwargs``, ...).
    - ``cache_dir``: a local directory where the file's pages are kept once downloaded, shared
      by the processes of the machine (each page is downloaded once per machine;
      ``ffcv_format.page_cache``). The directory grows to the file's size at most.
    - ``retry``: how transient errors (connection resets, timeouts, HTTP 5xx) are retried
      (``ffcv_format.remote.RetryPolicy``; default 6 attempts with exponential backoff). A
      missing file or a denied access raises ``FileNotFoundError``/``PermissionError``
      naming the URL when the loader is made.

    Iterating gives one tuple per batch, one element per output: the file's fields in
    file order, then extra outputs in the order given.

    >>> loader = Loader('train.beton', batch_size=256, order=OrderOption.RANDOM,
    ...                 pipelines={'image': [RandomResizedCropRGBImageDecoder((224, 224)),
    ...                                      ToTensor(), ToTorchImage()]})
    >>> for images, labels in loader: ...
    """

    def __init__(self, fname, batch_size, num_workers=-1, os_cache=None,
                 order=OrderOption.SEQUENTIAL, distributed=False, seed=None, indices=None,
                 pipelines=None, custom_fields=None, drop_last=True, batches_ahead=3,
                 recompile=False, order_kwargs=None, *, process_cache_limit=None, storage_options=None,
                 cache_dir=None, retry=None):
        self._init_args = dict(fname=fname, batch_size=batch_size, num_workers=num_workers,
                               os_cache=os_cache, order=order, distributed=distributed, seed=seed,
                               pipelines=pipelines, custom_fields=custom_fields, drop_last=drop_last,
                               batches_ahead=batches_ahead, recompile=recompile, order_kwargs=order_kwargs,
                               process_cache_limit=process_cache_limit, storage_options=storage_options,
                               cache_dir=cache_dir, retry=retry)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(num_workers, (int, np.integer)) or isinstance(num_workers, bool):
            raise ValueError(f"num_workers must be an integer (-1: all cores), got {num_workers!r}")
        if not isinstance(batches_ahead, (int, np.integer)) or batches_ahead < 0:
            raise ValueError(f"batches_ahead must be a non-negative integer, got {batches_ahead!r}")
        self.fname = str(fname)
        self.batch_size = int(batch_size)
        if num_workers < 1:
            num_workers = Compiler.num_threads or default_num_workers()
        self.num_workers = int(num_workers)
        if os_cache is None:   # FFCV 1.0's default, which this environment variable turns off
            os_cache = os.environ.get('FFCV_DEFAULT_CACHE_PROCESS', '0').strip() in ('', '0')
        self.os_cache = bool(os_cache)
        self.drop_last = bool(drop_last)
        self.batches_ahead = int(batches_ahead)
        self.recompile = bool(recompile)
        self.distributed = bool(distributed)
        self.reader = Reader(self.fname, custom_handlers=custom_fields, storage_options=storage_options,
                             cache_dir=cache_dir, retry=retry)

        if self.distributed:
            import torch.distributed as dist
            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError("Loader(distributed=True) needs torch.distributed to be initialized "
                                   "(torch.distributed.init_process_group) before the loader is made")
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        else:
            self.rank, self.world_size = 0, 1
        if seed is None:
            seed = 0 if self.distributed else secrets.randbits(32)
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = int(seed)

        n = self.reader.num_samples
        if indices is None:
            self.indices = np.arange(n, dtype=np.int64)
        else:
            self.indices = _check_indices(indices, n)

        self.pipeline_specs = self._pipeline_specs(pipelines or {})
        self.pipelines = self._build_pipelines(self.pipeline_specs)
        self.output_names = [p.name for p in self.pipelines]
        used_fields = sorted({p.source for p in self.pipelines}, key=self.reader.field_names.index)
        # The pages holding each sample are needed only by the process cache and by page-aware
        # orders; for other loaders the (num_samples, k) array is not built (at 10^8 samples it
        # would cost seconds and gigabytes at every start).
        needs_pages = (not self.os_cache or self.reader.remote is not None
                       or _order_class(order) not in (Sequential, Random))
        self._sample_pages = sample_pages(self.reader, used_fields if needs_pages else [])

        self.order_option = order
        self.order_kwargs = dict(order_kwargs or {})
        self.traversal_order = make_order(order, loader=self, order_kwargs=self.order_kwargs,
                                          **self.traversal_arguments())
        self._order_ahead = None
        if type(self.traversal_order) in (Random, QuasiRandom) and len(self.indices) >= _ORDER_AHEAD_SAMPLES:
            self._order_ahead = _OrderAhead(self.traversal_order, 0)

        if self.reader.remote is not None:
            self.memory_manager = remote_memory_manager(self.reader, self.os_cache, process_cache_limit)
        elif self.os_cache:
            self.memory_manager = OSCacheManager(self.reader)
        else:
            self.memory_manager = ProcessCacheManager(self.reader, process_cache_limit)

        self.next_epoch = 0
        self._resume_batch = 0
        self._resume_history = ()     # earlier stages of the next epoch (resumed with another world size)
        self._resumed_batches = None  # this rank's batches of that epoch's remainder
        self._progress = None         # _Progress of the epoch last started
        self._current = None          # weakref to the running epoch's iterator
        self._slots = None
        self._slot_key = None
        self._lock = threading.Lock()
        self.code = None
        self.generate_code()
        if len(self) == 0:
            self._warn_no_batches()

    def _warn_no_batches(self):
        samples = len(self.traversal_order)
        where = ' on this rank' if self.distributed else ''
        if samples == 0:
            reason = f"it has no samples{where}"
        else:
            reason = (f"its {samples} samples{where} are fewer than batch_size={self.batch_size} and "
                      f"drop_last=True drops the partial batch (pass drop_last=False to get it)")
        warnings.warn(f"Loader({self.fname!r}) will yield no batch: {reason}", stacklevel=3)

    def traversal_arguments(self):
        """What a traversal order is built from (FFCV 1.0 orders receive the loader itself)."""
        return dict(indices=self.indices, seed=self.seed, distributed=self.distributed, rank=self.rank,
                    world_size=self.world_size, batch_size=self.batch_size, drop_last=self.drop_last,
                    sample_pages=self._sample_pages[:, 0] if self._sample_pages.shape[1] else None)

    # ------------------------------------------------------------ pipelines

    def _pipeline_specs(self, pipelines):
        """``{output name: PipelineSpec}``: the file's fields in file order (those not named get
        the default pipeline), then extra outputs in the order given (FFCV 1.0's layout)."""
        names = self.reader.field_names
        for key, spec in pipelines.items():
            if key not in names and not isinstance(spec, PipelineSpec) and spec is not None:
                raise ValueError(f"pipelines has {key!r}, which is not a field of {self.fname} "
                                 f"(fields: {', '.join(names)}); use PipelineSpec(source=...) for an "
                                 f"extra output")
        specs = {}
        for name in list(names) + [k for k in pipelines if k not in names]:
            spec = pipelines.get(name, [])
            if spec is None:
                continue
            if isinstance(spec, PipelineSpec):
                if spec.source not in names:
                    raise ValueError(f"pipeline {name!r} reads field {spec.source!r}, which {self.fname} "
                                     f"does not have (fields: {', '.join(names)})")
            else:
                if isinstance(spec, Operation):
                    spec = [spec]
                spec = PipelineSpec(name, transforms=list(spec))
            specs[name] = spec
        if not specs:
            raise ValueError("every field was left out (pipelines all None): nothing to load")
        return specs

    def _build_pipelines(self, specs):
        result = []
        for name, spec in specs.items():
            ops = ([spec.decoder] if spec.decoder is not None else []) + list(spec.transforms)
            result.append(Pipeline(name, spec.source, self.reader.handlers[spec.source], ops,
                                   self.reader.metadata[spec.source], page_size=self.reader.page_size))
        decoders = [p.operations[0] for p in result]
        if len({id(d) for d in decoders}) != len(decoders):
            raise ValueError("the same decoder object is used by two pipelines; give each its own")
        return result

    def generate_code(self):
        """Declare every pipeline and generate (compile) every operation's code: done when the
        loader is made and, with ``recompile=True``, at every epoch (FFCV 1.0's meaning).
        ``loader.code`` is the generated code, per pipeline."""
        for pipeline in self.pipelines:
            pipeline.declare()
            pipeline.generate(force=True)
        self.code = tuple(tuple(step.code for step in p.steps) for p in self.pipelines)
        return self.code

    # ------------------------------------------------------------ epochs

    def next_traversal_order(self):
        """The sample order of the next epoch (on this rank)."""
        return self.traversal_order.sample_order(self.next_epoch)

    @property
    def first_traversal_order(self):
        """The sample order of epoch 0 (on this rank)."""
        return self.traversal_order.sample_order(0)

    def _batches(self, epoch):
        ahead, self._order_ahead = self._order_ahead, None
        order = ahead.take(self.traversal_order, epoch) if ahead is not None else None
        if order is None:
            order = self.traversal_order.sample_order(epoch)
        order = np.asarray(order, dtype=np.int64)
        bs = self.batch_size
        count = len(order) // bs if self.drop_last else -(-len(order) // bs)
        return [order[i * bs:(i + 1) * bs] for i in range(count)]

    def __len__(self):
        """Batches per epoch (on this rank)."""
        total = len(self.traversal_order)
        return total // self.batch_size if self.drop_last else -(-total // self.batch_size)

    def _prepare_slots(self):
        if self.recompile:
            self.generate_code()
        else:   # what an operation declares may change between epochs (e.g. output_size)
            for p in self.pipelines:
                p.declare()
        key = ([(tuple(p.allocations), tuple(p.shared_allocations)) for p in self.pipelines], self.batch_size)
        if self._slot_key != key:
            pinned = any(p.needs_pinned_memory() for p in self.pipelines)
            num_slots = self.batches_ahead + 2
            self._slots = None      # the old buffers go before the new ones are made
            self._check_buffer_memory(num_slots)
            self._slots = [[p.allocate(self.batch_size, pinned=pinned) for p in self.pipelines]
                           for _ in range(num_slots)]
            self._slot_key = key
            self._cuda = CudaPrefetch(num_slots) if pinned else None
        return self._slots

    def _check_buffer_memory(self, num_slots):
        """Refuse, before allocating them, ring buffers larger than the memory available (a
        size read from a damaged file, or a batch too large for this machine)."""
        available = available_memory()
        if available is None:
            return
        per_sample = [(p, op, nbytes) for p in self.pipelines for op, nbytes in p.host_bytes_per_sample()]
        total = sum(nbytes for _, _, nbytes in per_sample) * self.batch_size * num_slots
        if total <= available:
            return
        pipeline, op, nbytes = max(per_sample, key=lambda item: item[2])
        raise MemoryError(
            f"{self.fname!r}: the loader's buffers would take {total / 2**30:.1f} GiB ({num_slots} slots of "
            f"{self.batch_size} samples), more than the {available / 2**30:.1f} GiB of memory available; "
            f"the largest is {op!r} of output {pipeline.name!r} with {nbytes} bytes per sample: lower "
            f"batch_size or batches_ahead, or, if that size is not what the file should hold, the file "
            f"is damaged (`ffcv verify`)")

    def __iter__(self):
        with self._lock:
            self.close()
            epoch = self.next_epoch
            start = self._resume_batch
            history, resumed = self._resume_history, self._resumed_batches
            self.next_epoch += 1
            self._resume_batch = 0
            self._resume_history, self._resumed_batches = (), None
            slots = self._prepare_slots()
            batches = self._batches(epoch) if resumed is None else resumed
            pages = self._sample_pages
            seeds = [p.op_seeds(self.seed, epoch, i) for i, p in enumerate(self.pipelines)]
            run = EpochRun(pipelines=self.pipelines, slots=slots, batches=batches,
                           memory=self.memory_manager,
                           batch_pages=lambda idx: np.unique(pages[idx]) if pages.shape[1] else _NO_PAGES,
                           num_workers=self.num_workers, batches_ahead=self.batches_ahead, seeds=seeds,
                           storage_state=self.memory_manager.storage_state,
                           chunk_size=min((p.chunk_size() for p in self.pipelines), default=CHUNK_SIZE),
                           start_batch=start,
                           cuda=self._cuda, where=f"{self.fname!r}, epoch {epoch}")
            self._progress = _Progress(epoch, start, len(batches), history)
            iterator = EpochIterator(self, run, self._progress)
            self._current = weakref.ref(iterator)
            return iterator

    def close(self):
        """Stop the running epoch's worker threads (also done by a new ``iter()``)."""
        current = self._current() if self._current is not None else None
        if current is not None:
            current.close()
        self._current = None

    # ------------------------------------------------------------ resume

    def state_dict(self) -> dict:
        """Where training is: the epoch and how many of its batches this rank handed out (a
        batch counts once the iterator has returned it; the batches prepared ahead do not),
        with what a loader of another world size needs to resume (``loader_state``; not a
        collective: any rank may call it alone).

        ``load_state_dict`` on a loader made with the same arguments continues from there:
        the next ``iter()`` gives exactly the batches not yet handed out, then the next epochs
        as an uninterrupted run would, whichever way the epoch was left.
        """
        progress = self._progress
        if progress is not None and progress.given < progress.total:
            # an epoch left before its end, however (break, an exception, Ctrl-C, the iterator
            # dropped): it resumes with the first batch not handed out
            epoch, batch, history = progress.epoch, progress.given, progress.history
        else:
            epoch, batch, history = self.next_epoch, self._resume_batch, self._resume_history
        return make_state(epoch=epoch, batch=batch, seed=self.seed, batch_size=self.batch_size,
                          num_samples=len(self.indices), world_size=self.world_size, rank=self.rank,
                          drop_last=self.drop_last, order=self._order_name(), history=history)

    def load_state_dict(self, state) -> None:
        """Continue from ``state``: a ``state_dict()`` of a loader made with the same arguments,
        or the list of every rank's ``state_dict()``, taken with this or another number of ranks
        (``docs/elastic-resume.md``).

        One state: the ranks are taken to have advanced in lockstep (as DDP makes them), each
        having handed out the state's ``batch`` batches. A list (one state per old rank) gives
        each rank's own count. With the world size of the state(s) and equal counts, the epoch
        continues as it would have; otherwise the ranks of this loader share the epoch's samples
        that no old rank consumed, each once, with the same number of batches on every rank.
        A state of another dataset size, batch size, ``drop_last`` or order is refused.
        """
        point = read_resume_point(state, batch_size=self.batch_size, num_samples=len(self.indices),
                                  world_size=self.world_size)
        counts = set(point.current_batches)
        if not point.history and point.current_world_size == self.world_size and len(counts) == 1 \
                and None not in counts:
            self._resume_at(point.epoch, point.seed, counts.pop())    # the epoch's normal order
            return
        self._resume_elsewhere(point)

    def _resume_at(self, epoch, seed, batch, history=(), batches=None):
        self.close()
        self.seed = int(seed)
        self.traversal_order.seed = self.seed
        self.next_epoch = int(epoch)
        self._resume_batch = int(batch)
        self._resume_history, self._resumed_batches = tuple(history), batches
        self._progress = None

    def _order_name(self):
        kind = type(self.traversal_order)
        return f"{kind.__module__}.{kind.__qualname__}"

    def _resume_elsewhere(self, point):
        """Resume from ``point``, taken with another world size, or in an epoch already resumed
        with another world size, or with ranks not in lockstep: this rank's batches of what the
        earlier stages left (``elastic``)."""
        differing = [f"{name} {theirs!r} (this loader: {ours!r})"
                     for name, theirs, ours in (('drop_last', point.drop_last, self.drop_last),
                                                ('order', point.order, self._order_name()))
                     if theirs is not None and theirs != ours]
        if differing:
            raise ValueError("cannot resume: the state was saved by a loader with " + ', '.join(differing))
        if not deals_global_order(self.traversal_order):
            raise ValueError(f"cannot resume a state saved with world_size {point.current_world_size} on "
                             f"{self.world_size} ranks (or with ranks not in lockstep): the order "
                             f"{self._order_name()} makes each rank's samples itself (its own "
                             f"sample_order), so what other ranks consumed is unknown. Resume with "
                             f"{point.current_world_size} ranks, or derive the order from Sequential, Random "
                             f"or QuasiRandom, overriding global_order")
        order = copy.copy(self.traversal_order)
        order.seed = point.seed
        n, batch_size, drop_last = len(self.indices), self.batch_size, self.drop_last
        counts = point.current_batches
        if None in counts:      # ranks already in the next epoch: they handed out all their batches
            total = stage_batches(n, batch_size, drop_last, point.history, point.current_world_size,
                                  order.dealt_positions)
            counts = tuple(total if count is None else count for count in counts)
        current = Stage(point.current_world_size, counts)
        if current.world_size == self.world_size and len(set(counts)) == 1:
            history, skip = point.history, counts[0]   # the same stage, continued
            if not history:
                self._resume_at(point.epoch, point.seed, skip)
                return
        else:
            history, skip = drop_unconsumed(point.history + (current,)), 0
        if not history:        # nothing consumed: the epoch's normal order with this world size
            self._resume_at(point.epoch, point.seed, 0)
            return
        remaining = remaining_positions(n, batch_size, drop_last, history, order.dealt_positions)
        split = split_remainder(remaining.size, self.world_size, batch_size)
        if skip > split.num_batches:
            raise ValueError(f"the state says each rank handed out {skip} batches of resumed stage "
                             f"{len(history)}, which has {split.num_batches} batches per rank")
        if skip == split.num_batches:   # nothing left of the epoch
            self._resume_at(point.epoch + 1, point.seed, 0)
            return
        global_order = np.asarray(order.global_order(point.epoch), dtype=np.int64)
        batches = [global_order[remaining[rows]] for rows in split.rank_batches(self.rank)]
        self._order_ahead = None
        self._resume_at(point.epoch, point.seed, skip, history, batches)

    # ------------------------------------------------------------ filter

    def filter(self, field_name, condition):
        """A new loader (same arguments) over the samples for which ``condition`` is true.

        As in FFCV 1.0, ``condition`` receives each sample as the field's pipeline makes it
        (the pipeline given for ``field_name``, else its default one: e.g. a ``(1,)`` tensor
        for an ``IntField``); the field is read once, in order, to decide.

        >>> cats_and_dogs = loader.filter('label', lambda label: label[0] in (3, 5))
        """
        if field_name not in self.reader.field_names:
            raise ValueError(f"{field_name!r} is not a field of {self.fname} "
                             f"(fields: {', '.join(self.reader.field_names)})")
        given = self._init_args['pipelines'] or {}
        pipelines = {name: None for name in self.reader.field_names}
        pipelines[field_name] = given.get(field_name, [])
        # every rank reads every sample in order, so that all ranks keep the same ones
        reading = Loader(**dict(self._init_args, pipelines=pipelines, indices=self.indices,
                                order=OrderOption.SEQUENTIAL, order_kwargs=None, distributed=False,
                                drop_last=False, recompile=False))
        keep = np.zeros(len(self.indices), dtype=bool)
        position = 0
        for (batch,) in reading:
            for sample in batch:
                keep[position] = bool(condition(sample))
                position += 1
        if position != len(self.indices):   # pragma: no cover - the loader yields every sample
            raise RuntimeError(f"filter read {position} samples of {len(self.indices)}")
        return Loader(**dict(self._init_args, indices=self.indices[keep], seed=self.seed))

    def __del__(self):
        try:
            self.close()
            self.memory_manager.close()
        except Exception:
            pass

    def __repr__(self):
        return (f"Loader({self.fname!r}, batch_size={self.batch_size}, num_workers={self.num_workers}, "
                f"order={self.order_option}, samples={len(self.indices)}, batches={len(self)})")


class _OrderAhead:
    """An epoch's sample order computed in a thread (built-in orders only: a pure function of
    their arguments). :meth:`take` gives it if it is still the one wanted."""

    def __init__(self, order, epoch):
        self.order, self.epoch, self.seed = order, epoch, order.seed
        self.result = None
        self.thread = threading.Thread(target=self._compute, name='ffcv-order-ahead', daemon=True)
        self.thread.start()

    def _compute(self):
        try:
            self.result = self.order.sample_order(self.epoch)
        except BaseException:   # computed again by whoever needs it, who then gets the error
            pass

    def take(self, order, epoch):
        """The order of ``epoch`` if it was computed by ``order`` with its current seed, else None."""
        self.thread.join()
        if order is self.order and epoch == self.epoch and order.seed == self.seed:
            return self.result
        return None


class _Progress:
    """How far an epoch got: batches handed out of ``total``; the loader keeps the record of
    the epoch last started, so that ``state_dict`` knows it after the iterator is gone.
    ``history``: the epoch's earlier stages (``elastic.Stage``) when it was resumed with another
    number of ranks, the batches being then this rank's share of what they left."""
    __slots__ = ('epoch', 'given', 'total', 'history')

    def __init__(self, epoch, given, total, history=()):
        self.epoch, self.given, self.total, self.history = epoch, given, total, tuple(history)


class EpochIterator:
    """One epoch's batches. It keeps its loader alive (``for batch in Loader(...)`` yields
    every batch); dropping the iterator (or ``close()``) stops its worker threads."""

    def __init__(self, loader, run, progress):
        self.loader = loader
        self._run = run
        self.progress = progress
        self.finished = False
        self._finalizer = weakref.finalize(self, EpochRun.close, run)

    @property
    def epoch(self):
        return self.progress.epoch

    @property
    def given(self):
        """Batches of the epoch handed out so far."""
        return self.progress.given

    @property
    def num_batches(self):
        return self.progress.total

    def __iter__(self):
        return self

    def __next__(self):
        if self.finished:
            raise StopIteration
        try:
            outputs = self._run.next()
        except StopIteration:
            self._finish()
            raise
        except BaseException:
            self._finish()
            raise
        self.progress.given += 1
        if self.progress.given >= self.progress.total:
            # the last batch: the worker threads are done; the buffers stay valid
            self._finalizer()
            self.finished = True
        return tuple(outputs)

    def __len__(self):
        return self.progress.total - self.progress.given

    def _finish(self):
        self.finished = True
        self._finalizer()

    def close(self):
        self._finish()


def _check_indices(indices, num_samples):
    try:
        array = np.asarray(indices)
    except Exception:
        raise ValueError(f"indices must be a sequence of sample ids, got {type(indices).__name__}") from None
    if array.ndim != 1 or (array.size and array.dtype.kind not in 'iu'):
        raise ValueError(f"indices must be a 1-D sequence of integers, got an array of {array.dtype} "
                         f"with shape {array.shape}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_samples):
        bad = array[(array < 0) | (array >= num_samples)][0]
        raise ValueError(f"indices has {bad}, outside [0, {num_samples}) (the file has {num_samples} samples)")
    return array
