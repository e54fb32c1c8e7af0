"""Turning a field's list of operations into code that fills preallocated batch buffers.

A pipeline runs in two parts. The *parallel part* is the longest prefix of operations that
process samples independently (the decoder and ``is_parallel`` operations): worker threads
each run a contiguous chunk of the batch through it, writing into their rows of the batch
buffers. The *batch part* (everything after, e.g. torch operations) runs once on the whole
batch. Chunks have a fixed size, so the work done for a sample never depends on the number
of worker threads.
"""
from typing import List, Optional, Sequence

import numpy as np
from ffcv_format.errors import in_context

from .adapter import build_operations, decoder_call, transform_call
from .allocation_query import AllocationQuery
from .compiler import Compiler, initialize_numba
from .decoders import Decoder
from .kernels.random import derive_seed, stream_seed
from .operation import Operation
from .state import State
from .storage import memory_read
from .views import decoder_views, one_view, per_view_call, with_views

__all__ = ['PipelineSpec', 'Pipeline', 'CHUNK_SIZE', 'CHUNK_BYTES', 'MAX_CHUNK_SIZE']

#: samples per unit of work of the parallel part, at least (large samples: JPEG crops)
CHUNK_SIZE = 16
#: bytes of a chunk's largest buffer that make it worth a unit of work: small samples
#: (CIFAR's 32x32 images, scalars) go in bigger chunks so that the per-chunk Python calls
#: do not dominate the compiled work (CIFAR-like: 16 -> 128 samples was 1.7x faster)
CHUNK_BYTES = 1 << 20
#: samples per chunk, at most
MAX_CHUNK_SIZE = 256


class PipelineSpec:
    """An output of the loader: the field it reads (``source``), its decoder (optional:
    the field's default decoder otherwise) and transforms (FFCV 1.0's ``PipelineSpec``).

    >>> PipelineSpec('image', transforms=[])   # a second output from the same field
    PipelineSpec(source='image', decoder=None, transforms=[])
    """

    def __init__(self, source, decoder=None, transforms=None):
        if not isinstance(source, str):
            raise TypeError(f"PipelineSpec source must be a field name, got {source!r}: an output made "
                            f"from another pipeline's operation is not supported; name the field and "
                            f"give the decoder and transforms (see docs/migrating-from-ffcv1.md)")
        self.source = source
        self.decoder = decoder
        self.transforms = list(transforms or [])

    def __repr__(self):
        return f"PipelineSpec(source={self.source!r}, decoder={self.decoder!r}, transforms={self.transforms!r})"


class _Step:
    """One operation of a built pipeline: its code as generated (``code``), the same code in
    the pipeline's uniform call form (``call``, see ``ffcv_ops.adapter``), and whether it
    runs on chunks in worker threads (``parallel``)."""
    __slots__ = ('op', 'code', 'call', 'parallel', 'compiled')


class Pipeline:
    """The operations that make one output from one field of a file.

    ``operations``: a list whose first element may be a decoder (the field's default
    decoder is used otherwise). ``metadata`` is the field's metadata column, ``page_size``
    the file's (it bounds what decoders allocate from the metadata).
    """

    def __init__(self, name, source, field, operations: Sequence[Operation], metadata, page_size=None):
        operations = build_operations(name, operations, field)
        self.name, self.source, self.field = name, source, field
        self.operations = operations
        self.metadata = metadata
        decoder = operations[0]
        decoder.accept_field(field)
        decoder.accept_globals(metadata, memory_read)
        if isinstance(decoder, Decoder):
            decoder.page_size = page_size
        self.steps: List[_Step] = []
        self._generated = False
        self._fused_next = False
        self._parallel_length = 1
        self._chunk_calls = ()
        self.states: List[State] = []
        #: views per sample of a multi-view decoder (None: one); the numpy operations of the
        #: parallel part after it run on each view (``ffcv_ops.views``): ``per_view[k]``
        self.views = decoder_views(decoder)
        self.per_view: List[bool] = []
        self.allocations: List[Optional[AllocationQuery]] = []
        self.shared_allocations: List[Optional[AllocationQuery]] = []

    # ------------------------------------------------------------ per epoch

    def declare(self):
        """Ask every operation for its output state and memory; returns the allocations."""
        initialize_numba()   # once per process, before any operation loads a kernel (see its docstring)
        state = initial_state()
        states, allocations, shared, per_view = [], [], [], []
        views = self.views
        for position, op in enumerate(self.operations):
            on_views = (views is not None and position > 0 and state.jit_mode and op.is_parallel is not False
                        and all(per_view[1:]))
            try:
                seen = one_view(state, views, f"pipeline {self.name!r}, {op!r}") if on_views else state
                shared.append(_check_allocation(self.name, op, op.declare_shared_memory(seen)))
                if on_views and shared[-1] is not None:
                    raise ValueError(f"it declares memory shared by the whole batch, so it cannot run on the "
                                     f"{views} views of {self.operations[0]!r} one at a time")
                state, alloc = op.declare_state_and_memory(seen)
                if on_views and isinstance(state, State):
                    state, alloc = with_views(state, alloc, views)
            except Exception as e:
                wrapped = in_context(e, f"pipeline {self.name!r}, {op!r}")
                if wrapped is e:
                    raise
                raise wrapped from e
            if not isinstance(state, State):
                raise TypeError(f"pipeline {self.name!r}: {op!r} declared the state {state!r}, not a State "
                                f"(return (dataclasses.replace(previous_state, ...), allocation))")
            states.append(state)
            allocations.append(_check_allocation(self.name, op, alloc))
            per_view.append(on_views)
        self.states, self.allocations, self.shared_allocations = states, allocations, shared
        self.per_view = per_view
        return allocations

    def generate(self, force=False):
        """Generate (and compile) every operation's code once (again with ``force``)."""
        if self._generated and not force:
            return
        if len(self.states) != len(self.operations):
            raise RuntimeError(f"pipeline {self.name!r}: call declare() before generate()")
        steps = []
        for position, (op, state) in enumerate(zip(self.operations, self.states)):
            step = _Step()
            step.op = op
            Compiler._iterator_requested = False
            code = op.generate_code()
            used_iterator = Compiler._iterator_requested
            Compiler._iterator_requested = False
            if not callable(code):
                raise TypeError(f"pipeline {self.name!r}: {op!r}.generate_code() returned {code!r}")
            step.compiled = op.compiled if op.compiled is not None else state.jit_mode
            if step.compiled:
                code = Compiler.compile(code)
            step.code = code
            if position == 0:
                step.call = decoder_call(op, code, step.compiled)
                step.parallel = op.is_parallel is not False
            else:
                shared = self.shared_allocations[position] is not None
                step.call = transform_call(op, code, step.compiled, shared)
                if shared:   # set up once per batch: runs on the whole batch
                    step.parallel = False
                else:
                    step.parallel = op.is_parallel if op.is_parallel is not None else used_iterator
                if self.per_view[position]:
                    step.call = per_view_call(step.call, self.views)
            steps.append(step)
        self._fuse(steps)
        self.steps = steps
        n = 0
        for step in steps:
            if not step.parallel:
                break
            n += 1
        self._parallel_length = max(n, 1)
        # what run_chunk calls after the decoder: the parallel steps, less those fused into it
        self._chunk_calls = tuple((k, steps[k].call) for k in range(1, self._parallel_length)
                                  if steps[k].call is not _pass_on)
        self._generated = True

    def _fuse(self, steps):
        """Let the decoder take over the operation after it where it can do both in one
        compiled call (``Decoder.fused_with``: a flip after a crop decoder). The decoder's call
        then takes that operation's seed too, and the operation's own step passes its input on."""
        self._fused_next = False
        fuse = getattr(steps[0].op, 'fused_with', None)
        if fuse is None or len(steps) < 2 or not (steps[0].parallel and steps[1].parallel) \
                or self.shared_allocations[1] is not None or self.views is not None:
            return
        fused = fuse(steps[1].op)
        if fused is not None:
            steps[0].call = fused
            steps[1].call = _pass_on
            self._fused_next = True

    @property
    def parallel_length(self):
        """How many leading operations run on chunks in worker threads."""
        return self._parallel_length

    @property
    def whole_batch(self) -> bool:
        """Whether the parallel part is worth no chunks: a decoder whose work per sample is a
        copy of a few bytes (``Decoder.per_batch``: the scalar decoders), alone. The loader
        then runs it once per batch (the same result: chunks never change what a sample gets)."""
        return self._parallel_length == 1 and bool(getattr(self.operations[0], 'per_batch', False))

    def chunk_size(self):
        """Samples per chunk for this pipeline: a power of two from :data:`CHUNK_SIZE` to
        :data:`MAX_CHUNK_SIZE` that makes the parallel part's largest per-sample buffer about
        :data:`CHUNK_BYTES` per chunk. Depends on the pipeline alone (not on the thread
        count), so that results stay the same with any number of workers."""
        sample_bytes = 1
        for alloc in self.allocations[:self.parallel_length]:
            for query in _queries(alloc):
                if _is_numpy_dtype(query.dtype):
                    sample_bytes = max(sample_bytes, int(np.prod(query.shape)) * np.dtype(query.dtype).itemsize)
        size = CHUNK_SIZE
        while size < MAX_CHUNK_SIZE and size * sample_bytes < CHUNK_BYTES:
            size *= 2
        return size

    def host_bytes_per_sample(self):
        """``[(operation, bytes)]``: what each operation's buffers in host memory take per sample
        (torch buffers on a GPU are not counted)."""
        found = []
        for op, alloc, shared in zip(self.operations, self.allocations, self.shared_allocations):
            nbytes = 0
            for query in _queries(alloc) + _queries(shared):
                on_host = _is_numpy_dtype(query.dtype) or getattr(query.device, 'type', query.device) in (None, 'cpu')
                if on_host:
                    itemsize = (np.dtype(query.dtype).itemsize if _is_numpy_dtype(query.dtype)
                                else query.dtype.itemsize)
                    nbytes += int(np.prod([int(v) for v in query.shape], dtype=object)) * itemsize
            found.append((op, nbytes))
        return found

    def allocate(self, batch_size, pinned=False):
        """One ring slot's buffers: one per operation (``None`` where none was asked)."""
        buffers = []
        for alloc, shared in zip(self.allocations, self.shared_allocations):
            own = _allocate_all(alloc, batch_size, pinned)
            buffers.append(own if shared is None else BufferGroup((own, _allocate_all(shared, batch_size, pinned))))
        return buffers

    def needs_pinned_memory(self):
        return any(getattr(s.device, 'type', None) == 'cuda' for s in self.states)

    def op_seeds(self, seed, epoch, pipeline_index):
        """Each operation's seed at ``epoch``: from (seed, epoch, pipeline, position), or, for an
        operation with a ``random_stream``, from (seed, epoch, stream) alone."""
        return [np.uint64(derive_seed(seed, epoch, pipeline_index, k) if op.random_stream is None
                          else stream_seed(seed, epoch, op.random_stream))
                for k, op in enumerate(self.operations)]

    # ------------------------------------------------------------ running

    def run_chunk(self, buffers, indices, lo, hi, seeds, storage_state):
        """Run the parallel part on samples ``indices[lo:hi]``; returns the chunk's result."""
        chunk = indices[lo:hi]
        steps = self.steps
        buffer = buffers[0]
        if self._fused_next:
            x = steps[0].call(chunk, None if buffer is None else buffer[lo:hi], self.metadata, storage_state,
                              seeds[0], seeds[1])
        else:
            x = steps[0].call(chunk, None if buffer is None else buffer[lo:hi], self.metadata, storage_state,
                              seeds[0])
        for k, call in self._chunk_calls:
            buffer = buffers[k]
            x = call(x, None if buffer is None else buffer[lo:hi], chunk, seeds[k])
        return x

    def chunk_runner(self, buffers, seeds, storage_state):
        """``run(indices, lo, hi)``: :meth:`run_chunk` with one ring slot's ``buffers``, an
        epoch's ``seeds`` and ``storage_state`` bound, made once per epoch and slot. A parallel
        part that is the decoder alone (a fused flip included) is its call with those bound:
        the Python between a worker thread and the compiled code is one frame."""
        if self._chunk_calls:
            run_chunk = self.run_chunk

            def run(indices, lo, hi):
                return run_chunk(buffers, indices, lo, hi, seeds, storage_state)

            return run
        decode, buffer, metadata, seed = self.steps[0].call, buffers[0], self.metadata, seeds[0]
        more = (seeds[1],) if self._fused_next else ()   # the seed of a step fused into the decoder
        if buffer is None or isinstance(buffer, tuple):
            def run_decoder(indices, lo, hi):
                return decode(indices[lo:hi], buffer if buffer is None else buffer[lo:hi], metadata,
                              storage_state, seed, *more)

            return run_decoder

        # a decoder writing its rows of the batch buffer answers FIRST_BUFFER_ROWS: _join then
        # knows the batch is that buffer without looking at every chunk's array
        def run_own_rows(indices, lo, hi):
            rows = buffer[lo:hi]
            out = decode(indices[lo:hi], rows, metadata, storage_state, seed, *more)
            return FIRST_BUFFER_ROWS if out is rows else out

        return run_own_rows

    def chunk_claimer(self, seeds, storage_state):
        """``claim(ring) -> (what, value)`` for a :class:`~ffcv_ops.chunk_ring.ChunkRing` of
        this pipeline's decoder buffers, with an epoch's ``seeds`` and ``storage_state`` bound,
        or None where the parallel part is not one compiled call of a decoder that can claim
        chunks itself (a crop decoder, a flip fused into it, nothing after them in the
        worker threads)."""
        if not self._generated or self._chunk_calls or self.views is not None:
            return None
        make = getattr(self.steps[0].op, 'chunk_claimer', None)
        claim = None if make is None else make(self.steps[1].op if self._fused_next else None)
        if claim is None:
            return None
        seed = seeds[0]
        fused_seed = seeds[1] if self._fused_next else 0

        def run(ring):
            return claim(ring, storage_state, seed, fused_seed)

        return run

    def finish_batch(self, buffers, indices, chunk_results, chunk_bounds, seeds):
        """Join the chunks' results into the batch and run the batch part on it."""
        n = indices.shape[0]
        x = _join(chunk_results, chunk_bounds, buffers[:self.parallel_length], n)
        steps = self.steps
        for k in range(self.parallel_length, len(steps)):
            buffer = buffers[k]
            x = steps[k].call(x, None if buffer is None else buffer[:n], indices, seeds[k])
        return x

    def __repr__(self):
        return f"Pipeline({self.name!r} <- {self.source!r}: {self.operations!r})"


def _pass_on(inputs, destination, indices, seed):
    """The step of an operation fused into the decoder's call (``Pipeline._fuse``)."""
    return inputs


def _same_view(a, b):
    """Whether numpy array ``a`` is exactly the view ``b`` (same memory, shape and strides)."""
    return (isinstance(a, np.ndarray) and a.shape == b.shape and a.strides == b.strides
            and a.__array_interface__['data'][0] == b.__array_interface__['data'][0])


def _rows_of(results, bounds, whole):
    """Whether every chunk's result is exactly its rows ``lo:hi`` of numpy array ``whole``
    (one address read per chunk: this runs per batch, in Python)."""
    start = whole.__array_interface__['data'][0]
    row = whole.strides[0]
    tail = whole.shape[1:]
    strides = whole.strides
    for r, (lo, hi) in zip(results, bounds):
        if not (isinstance(r, np.ndarray) and r.strides == strides and r.shape[0] == hi - lo
                and r.shape[1:] == tail and r.__array_interface__['data'][0] == start + lo * row):
            return False
    return True


class _FirstBufferRows:
    """A chunk's result that is its rows of the pipeline's first buffer (the decoder's)."""

    def __repr__(self):
        return 'FIRST_BUFFER_ROWS'


FIRST_BUFFER_ROWS = _FirstBufferRows()


def _join(results, bounds, buffers, n):
    """The whole batch's result, given each chunk's result.

    Chunks normally return their rows of one of the batch buffers; then the batch result
    is that buffer's first ``n`` rows (no copy). Anything else is concatenated.
    """
    if any(r is FIRST_BUFFER_ROWS for r in results):
        if all(r is FIRST_BUFFER_ROWS for r in results):
            return buffers[0][:n]
        results = [buffers[0][lo:hi] if r is FIRST_BUFFER_ROWS else r for r, (lo, hi) in zip(results, bounds)]
    if len(results) == 1 and bounds[0] == (0, n):
        return results[0]
    first = results[0]
    for buf in buffers:
        if buf is None or type(buf) is not type(first):
            continue
        whole = buf[:n]
        if isinstance(whole, np.ndarray):
            if _rows_of(results, bounds, whole):
                return whole
        elif all(_same_view(r, whole[lo:hi]) for r, (lo, hi) in zip(results, bounds)):
            return whole
    if isinstance(first, np.ndarray):
        return np.concatenate(results)
    import torch
    return torch.cat(results)


def _page_aligned_empty(shape, dtype, alignment=4096):
    """``np.empty(shape, dtype)`` starting on a page boundary. numpy's large arrays start 16
    bytes into a page; copying page-aligned samples from the file into rows offset like that
    took glibc's memcpy a slow path (300 KiB NDArray samples: 2.5 vs 9.5 GB/s here)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def initial_state():
    """What a pipeline starts from, as FFCV 1.0 defines it: numpy (``jit_mode``) bytes on the
    CPU (``device`` is ``torch.device('cpu')`` when torch is installed), shape unknown."""
    try:
        import torch
        device = torch.device('cpu')
    except ImportError:
        device = None
    return State(jit_mode=True, device=device, shape=None, dtype=np.dtype('u1'))


def _check_allocation(name, op, alloc):
    for query in _queries(alloc):
        if not isinstance(query, AllocationQuery):
            raise TypeError(f"pipeline {name!r}: {op!r} declared {alloc!r}, not an AllocationQuery "
                            f"(or a sequence of them)")
    return alloc


def _queries(alloc):
    """The AllocationQuery objects of a declaration: none, one, or a sequence (FFCV 1.0)."""
    if alloc is None:
        return ()
    if isinstance(alloc, (tuple, list)):
        return tuple(alloc)
    return (alloc,)


class BufferGroup(tuple):
    """Several buffers of one operation (FFCV 1.0 lets an operation ask for a sequence of
    allocations): ``group[lo:hi]`` is the tuple of each buffer's rows ``lo:hi``."""

    def __getitem__(self, key):
        if isinstance(key, slice):
            return tuple(None if b is None else b[key] for b in self)
        return tuple.__getitem__(self, key)


def _allocate_all(alloc, batch_size, pinned):
    if alloc is None:
        return None
    if isinstance(alloc, (tuple, list)):
        return BufferGroup(_allocate(q, batch_size, pinned) for q in alloc)
    return _allocate(alloc, batch_size, pinned)


def _is_numpy_dtype(dtype):
    return not type(dtype).__module__.startswith('torch')


def _allocate(alloc, batch_size, pinned):
    """A buffer for ``batch_size`` samples: numpy for a numpy dtype (FFCV 1.0's rule, whatever
    the device), a torch tensor on ``alloc.device`` for a torch dtype."""
    shape = (batch_size, *(int(s) for s in alloc.shape))
    dtype = alloc.dtype
    if _is_numpy_dtype(dtype):
        dtype = np.dtype(dtype)
        if pinned:
            import torch
            tdtype = torch.from_numpy(np.zeros(0, dtype)).dtype
            return torch.empty(shape, dtype=tdtype, pin_memory=True).numpy()
        return _page_aligned_empty(shape, dtype)
    import torch
    device = torch.device('cpu') if alloc.device is None else torch.device(alloc.device)
    return torch.empty(shape, dtype=dtype, device=device,
                       pin_memory=bool(pinned and device.type == 'cpu'))
