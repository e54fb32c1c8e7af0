"""Running pipelines without a loader, and a conformance kit for Operation plugins.

``run_pipeline`` drives a field's pipeline the way the loader does (declare, generate,
allocate, the batch in chunks of samples, then the batch part), straight from a
``Reader``: tests of operations need neither threads of a loader nor ffcv-loader::

    reader = write_dataset('t.beton', {'label': IntField()}, [(i,) for i in range(10)])
    run_pipeline(reader, 'label', [IntDecoder(), AddOne()], np.arange(10), seed=0, epoch=0)
    # -> a (10, 1) array: 1, 2, ..., 10

``OperationTests`` is a base class that a plugin's test suite subclasses (pytest collects
the subclass's ``test_*`` methods)::

    class TestMyBlur(OperationTests):
        def make_operation(self):
            return MyBlur(sigma=1.5)

It writes a tiny image file (override ``make_field``/``make_samples`` for other data) and
checks the protocol: ``declare_state_and_memory`` returns ``(State, AllocationQuery|None)``,
``generate_code`` returns a callable, the operation runs in a pipeline and its output has
the declared shape and dtype and lies in the memory the pipeline allocated (the buffer it
asked for, or its input changed in place); the result is the same whether the batch runs
as one chunk or as several, in any order, on 1 or several threads, and the same again under
the same seed (another seed changes it, for ``random`` operations); and a warm run allocates
nothing per sample (``measure_allocations``).
"""
import atexit
import os
import shutil
import tempfile
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from ffcv_format import RGBImageField
from ffcv_format.testing import write_dataset

from .allocation_query import AllocationQuery
from .decoders import Decoder
from .pipeline import CHUNK_SIZE, Pipeline
from .state import State

__all__ = ['storage_state_of', 'make_pipeline', 'run_batch', 'run_pipeline', 'to_numpy', 'Allocations',
           'measure_allocations', 'OperationTests']


def storage_state_of(reader):
    """The storage state of a ``Reader``'s memory map (every page resident, in place)."""
    return reader.storage_state()


def make_pipeline(reader, field, ops, name=None):
    """A ``Pipeline`` of ``ops`` reading field ``field`` of ``reader`` (not yet declared)."""
    return Pipeline(name or field, field, reader.handlers[field], list(ops), reader.metadata[field],
                    page_size=reader.page_size)


def _chunk_bounds(n, chunk):
    if chunk is None:
        chunk = CHUNK_SIZE
    if chunk <= 0:
        raise ValueError(f"chunk must be a positive number of samples, got {chunk!r}")
    return [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)] or [(0, 0)]


def run_batch(pipeline, storage_state, indices, seed=0, epoch=0, chunk=None, batch_size=None,
              buffers=None, workers=1, chunk_order=None, pipeline_index=0):
    """Run one batch of a declared and generated ``pipeline`` on samples ``indices``.

    ``chunk``: samples per chunk of the parallel part (``None``: the loader's ``CHUNK_SIZE``).
    ``batch_size``: rows of the buffers (at least ``len(indices)``; a partial batch uses
    the first rows). ``buffers``: one ring slot from ``pipeline.allocate`` (allocated here if
    not given). ``workers``: threads that run the chunks; ``chunk_order``: the order in
    which chunks are submitted (a permutation of their positions), to check that results
    do not depend on scheduling.
    """
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    n = indices.shape[0]
    if buffers is None:
        buffers = pipeline.allocate(n if batch_size is None else batch_size)
    seeds = pipeline.op_seeds(seed, epoch, pipeline_index)
    bounds = _chunk_bounds(n, chunk)
    order = list(range(len(bounds))) if chunk_order is None else list(chunk_order)
    if sorted(order) != list(range(len(bounds))):
        raise ValueError(f"chunk_order must be a permutation of range({len(bounds)}), got {chunk_order!r}")
    results = [None] * len(bounds)

    def run(c):
        lo, hi = bounds[c]
        if hi > lo:
            results[c] = pipeline.run_chunk(buffers, indices, lo, hi, seeds, storage_state)

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(run, c) for c in order]:
                future.result()
    else:
        for c in order:
            run(c)
    return pipeline.finish_batch(buffers, indices, results, bounds, seeds)


def run_pipeline(reader, field, ops, indices, seed=0, epoch=0, chunk=None, **options):
    """The output of ``ops`` on samples ``indices`` of ``field`` of ``reader``, run as the
    loader runs a batch (see ``run_batch`` for ``chunk`` and the other ``options``)."""
    pipeline = make_pipeline(reader, field, ops)
    pipeline.declare()
    pipeline.generate()
    return run_batch(pipeline, storage_state_of(reader), indices, seed=seed, epoch=epoch, chunk=chunk,
                     **options)


def to_numpy(batch):
    """A batch (numpy array or torch tensor, on any device) as a numpy array."""
    if isinstance(batch, np.ndarray):
        return batch
    if hasattr(batch, 'detach'):
        return batch.detach().cpu().numpy()
    return np.asarray(batch)


@dataclass(frozen=True)
class Allocations:
    """What a call allocated: ``traced_peak``, the most bytes it held at once through Python's
    and numpy's allocators (tracemalloc) above what was held before it; ``retained``, the
    bytes still held after it; ``compiled``, how many allocations numba-compiled code made
    (``None`` where numba's counters are not available). Memory that OpenCV or torch
    allocate is not seen."""
    traced_peak: int
    retained: int
    compiled: int | None


def _numba_counters():
    """(numba's runtime, its stats switch) with the allocation counters on, or (None, None)
    where they are unavailable (numba's ``_nrt_python`` is not a public module)."""
    try:
        from numba.core.runtime import _nrt_python, rtsys
        if _nrt_python.memsys_stats_enabled():
            return rtsys, None
        _nrt_python.memsys_enable_stats()
        return rtsys, _nrt_python.memsys_disable_stats      # switched back off afterwards
    except Exception:  # noqa: BLE001 - an optional measurement: numba's private module may change
        return None, None


def measure_allocations(function: Callable[[], object]) -> Allocations:
    """Call ``function()`` and return what it allocated (see :class:`Allocations`).

    >>> measure_allocations(lambda: np.empty(1 << 20)).traced_peak >= 8 << 20
    True
    """
    counters, switch_off = _numba_counters()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        compiled_before = counters.get_allocation_stats().alloc if counters is not None else None
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        function()
        current, peak = tracemalloc.get_traced_memory()
        compiled = (counters.get_allocation_stats().alloc - compiled_before) if counters is not None else None
    finally:
        if not tracing:
            tracemalloc.stop()
        if switch_off is not None:
            switch_off()
    return Allocations(traced_peak=max(0, peak - before), retained=max(0, current - before), compiled=compiled)


def _sample_bytes(state):
    """Bytes of one sample of ``state`` (numpy or torch dtype)."""
    dtype = state.dtype
    itemsize = dtype.itemsize if type(dtype).__module__.startswith('torch') else np.dtype(dtype).itemsize
    return int(np.prod([int(s) for s in state.shape], dtype=np.int64)) * itemsize


def _byte_bounds(array):
    """(first, one past the last) address of the bytes of a numpy array, whatever its strides."""
    low = high = array.__array_interface__['data'][0]
    if array.size == 0:
        return low, low
    for length, stride in zip(array.shape, array.strides):
        if stride < 0:
            low += (length - 1) * stride
        else:
            high += (length - 1) * stride
    return low, high + array.itemsize


def _memory_ranges(buffers):
    """(start, end) addresses of every host buffer of a ring slot (numpy arrays, CPU tensors)."""
    ranges = []
    for buffer in buffers:
        for part in (buffer if isinstance(buffer, tuple) else (buffer,)):
            if isinstance(part, np.ndarray):
                ranges.append(_byte_bounds(part))
            elif part is not None and hasattr(part, 'data_ptr') and part.device.type == 'cpu':
                start = part.untyped_storage().data_ptr()
                ranges.append((start, start + part.untyped_storage().nbytes()))
    return ranges


def _address_range(batch):
    if isinstance(batch, np.ndarray):
        return _byte_bounds(batch)
    if hasattr(batch, 'data_ptr') and batch.device.type == 'cpu':
        start = batch.untyped_storage().data_ptr()
        return start, start + batch.untyped_storage().nbytes()
    return None


def _dtype_name(dtype):
    """'float32' for np.float32, np.dtype('<f4') and torch.float32 alike."""
    if type(dtype).__module__.startswith('torch'):
        return str(dtype).replace('torch.', '')
    return np.dtype(dtype).name


class OperationTests:
    """Conformance tests of one Operation; subclass it in a pytest module.

    Override ``make_operation`` (required). Optionally: ``preceding_operations`` (what runs
    before it; default: the field's default decoder), ``make_field`` and ``make_samples``
    (the tiny file's field and its samples; default: raw RGB images of one size),
    ``batch_indices``, and ``random = True`` for operations whose result depends on the seed.
    A decoder under test is the first operation (``preceding_operations`` must be empty).

    The checks: the declaration (``test_declare_state_and_memory``), the code
    (``test_generate_code_returns_a_callable``), the output's shape and dtype as declared
    (``test_output_has_the_declared_shape_and_dtype``) and in the pipeline's buffers
    (``test_output_lies_in_the_pipelines_buffers``), the same result whatever the chunks
    and their order (``test_same_result_whatever_the_chunks``), with 1 and ``threads``
    threads (``test_same_result_with_one_and_several_threads``) and under the same seed
    (``test_same_seed_same_result``), and nothing allocated per sample by a warm run
    (``test_allocates_nothing_per_sample``; ``allocation_free = False`` skips the two
    memory checks for operations whose output is new memory by nature, such as a torch
    module's).
    """

    #: set to True for operations that draw random numbers (checked: the seed matters)
    random = False
    #: samples in the tiny file
    num_samples = 37
    #: set to False for operations whose output is new memory by nature (a torch module's
    #: result): the checks that the output lies in the pipeline's buffers and that a warm run
    #: allocates nothing per sample are then skipped
    allocation_free = True
    #: worker threads of the check against one thread
    threads = 4
    #: bytes per sample a warm run may hold at its peak beyond a fixed amount: room for a few
    #: Python numbers or a small list per sample; what is caught is memory the size of the data
    per_sample_allowance = 256

    # ------------------------------------------------------------ what subclasses set

    def make_operation(self):
        raise NotImplementedError(f"{type(self).__name__} must define make_operation()")

    def preceding_operations(self):
        return []

    def make_field(self):
        return RGBImageField(write_mode='raw')

    def make_samples(self):
        rng = np.random.default_rng(0)
        return [(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8),) for _ in range(self.num_samples)]

    def batch_indices(self):
        """A batch in a scrambled order, shorter than the file (loaders shuffle)."""
        return np.random.default_rng(1).permutation(self.num_samples)[:self.num_samples - 3]

    # ------------------------------------------------------------ the tiny file

    _readers = {}

    def reader(self):
        """The tiny file of this test class (written once per class and process)."""
        key = type(self)
        if key not in OperationTests._readers:
            directory = tempfile.mkdtemp(prefix='ffcv-ops-conformance-')
            atexit.register(shutil.rmtree, directory, True)
            path = os.path.join(directory, 'data.beton')
            OperationTests._readers[key] = write_dataset(path, {'data': self.make_field()},
                                                         self.make_samples(), num_workers=1)
        return OperationTests._readers[key]

    def operations(self):
        """(the full list of operations, the operation under test)."""
        op = self.make_operation()
        before = list(self.preceding_operations())
        if isinstance(op, Decoder) and before:
            raise ValueError("a decoder under test comes first: preceding_operations() must be empty")
        return before + [op], op

    def pipeline(self):
        ops, op = self.operations()
        pipeline = make_pipeline(self.reader(), 'data', ops)
        return pipeline, op

    def run_operation(self, **options):
        """The output of the operation (after ``preceding_operations``) on ``batch_indices``."""
        ops, _ = self.operations()
        return run_pipeline(self.reader(), 'data', ops, self.batch_indices(), **options)

    # ------------------------------------------------------------ the checks

    def test_declare_state_and_memory(self):
        pipeline, op = self.pipeline()
        pipeline.declare()
        position = pipeline.operations.index(op)
        previous = pipeline.states[position - 1] if position else State(jit_mode=True)
        declared = op.declare_state_and_memory(previous)
        assert isinstance(declared, tuple) and len(declared) == 2, (
            f"{op!r}.declare_state_and_memory() must return (State, AllocationQuery or None), "
            f"got {declared!r}")
        state, allocation = declared
        assert isinstance(state, State), f"{op!r} declared {state!r}, not a State"
        assert state.shape is not None and all(int(s) == s and s >= 0 for s in state.shape), (
            f"{op!r} declared shape {state.shape!r}: one sample's shape is a tuple of sizes")
        assert state.dtype is not None, f"{op!r} declared no dtype"
        assert allocation is None or isinstance(allocation, AllocationQuery), (
            f"{op!r} asked for {allocation!r}, not an AllocationQuery (or None)")
        if allocation is not None:
            assert all(int(s) == s and s >= 0 for s in allocation.shape), (
                f"{op!r} asked for memory of shape {allocation.shape!r}")

    def test_generate_code_returns_a_callable(self):
        pipeline, op = self.pipeline()
        pipeline.declare()
        assert callable(op.generate_code()), f"{op!r}.generate_code() must return a function"

    def test_output_has_the_declared_shape_and_dtype(self):
        pipeline, op = self.pipeline()
        pipeline.declare()
        pipeline.generate()
        indices = self.batch_indices()
        out = run_batch(pipeline, storage_state_of(self.reader()), indices, batch_size=len(indices) + 5)
        state = pipeline.states[-1]
        assert tuple(out.shape) == (len(indices), *state.shape), (
            f"{op!r} declared samples of shape {state.shape}; a batch of {len(indices)} "
            f"came out with shape {tuple(out.shape)}")
        assert _dtype_name(out.dtype) == _dtype_name(state.dtype), (
            f"{op!r} declared dtype {state.dtype}; the batch came out as {out.dtype}")

    def test_same_result_whatever_the_chunks(self):
        whole = to_numpy(self.run_operation(chunk=len(self.batch_indices()))).copy()
        for options in [dict(chunk=1), dict(chunk=5), dict(chunk=CHUNK_SIZE)]:
            np.testing.assert_array_equal(to_numpy(self.run_operation(**options)), whole,
                                          err_msg=f"{options}: the result depends on the chunks")
        n = len(self.batch_indices())
        num_chunks = -(-n // 4)
        reordered = to_numpy(self.run_operation(chunk=4, workers=3, chunk_order=list(range(num_chunks))[::-1]))
        np.testing.assert_array_equal(reordered, whole, err_msg="the result depends on the threads")

    def test_same_seed_same_result(self):
        first = to_numpy(self.run_operation(seed=3, epoch=1)).copy()
        np.testing.assert_array_equal(to_numpy(self.run_operation(seed=3, epoch=1)), first)
        if self.random:
            other = to_numpy(self.run_operation(seed=4, epoch=1))
            assert not np.array_equal(other, first), "a random operation gave the same result for two seeds"

    def test_same_result_with_one_and_several_threads(self):
        one = to_numpy(self.run_operation(chunk=1, workers=1, seed=5)).copy()
        for attempt in range(3):      # chunks of one sample: as many tasks at once as can be
            several = to_numpy(self.run_operation(chunk=1, workers=self.threads, seed=5))
            np.testing.assert_array_equal(several, one, err_msg=(
                f"{self.threads} threads gave another result than 1 (attempt {attempt + 1}): does the operation "
                f"keep state (a scratch buffer, a generator) shared by the threads?"))

    def _warm_pipeline(self):
        """A declared, generated pipeline, its buffers and a function running a batch on them,
        run once (compiled, caches filled)."""
        pipeline, op = self.pipeline()
        pipeline.declare()
        pipeline.generate()
        indices = self.batch_indices()
        buffers = pipeline.allocate(len(indices))
        storage_state = storage_state_of(self.reader())

        def run(rows):
            return run_batch(pipeline, storage_state, rows, seed=1, epoch=0, chunk=len(rows), buffers=buffers)

        run(indices[:4])
        run(indices)
        return pipeline, op, buffers, run, indices

    def test_output_lies_in_the_pipelines_buffers(self):
        if not self.allocation_free:
            import pytest
            pytest.skip('allocation_free = False: the memory checks are off for this operation')
        pipeline, op, buffers, run, indices = self._warm_pipeline()
        out = run(indices)
        where = _address_range(out)
        if where is None:          # on a device: nothing to check here
            return
        low, high = where
        file_data = storage_state_of(self.reader())[0]     # a decoder may hand out the file's bytes
        ranges = _memory_ranges(buffers) + _memory_ranges([file_data])
        inside = any(start <= low and high <= end for start, end in ranges)
        asked = pipeline.allocations[pipeline.operations.index(op)] is not None
        assert inside, (
            f"{op!r}'s output is memory of its own, not the buffer it " +
            ("asked for (write into the `destination` argument and return it)" if asked else
             "was given: change its input in place, or ask for a buffer with an AllocationQuery in "
             "declare_state_and_memory and write into `destination`") +
            "; an operation that allocates its output per batch costs an allocation per batch")

    def test_allocates_nothing_per_sample(self):
        if not self.allocation_free:
            import pytest
            pytest.skip('allocation_free = False: the memory checks are off for this operation')
        pipeline, op, _buffers, run, indices = self._warm_pipeline()
        # the same samples repeated: what a sample needs (e.g. a scratch buffer for the largest
        # image) is the same in both runs, and only what grows with their number is left
        small = indices[:4]
        large = np.resize(small, len(indices))
        few = measure_allocations(lambda: run(small))
        many = measure_allocations(lambda: run(large))
        extra = len(large) - len(small)
        sample_bytes = _sample_bytes(pipeline.states[-1])
        per_sample = (many.traced_peak - few.traced_peak) / extra
        assert per_sample < max(sample_bytes / 2, self.per_sample_allowance), (
            f"{op!r}: a warm run of {len(large)} samples held {many.traced_peak} bytes more at its peak, "
            f"{len(small)} samples {few.traced_peak}: {per_sample:.0f} bytes per sample (a sample is "
            f"{sample_bytes} bytes; {self.per_sample_allowance} bytes per sample are let through). A temporary array "
            f"of the batch (e.g. `images.astype(...)`, "
            f"`images * 0.5`) or a result that is not written into `destination` is allocated "
            f"every batch: write into the preallocated buffer instead")
        if few.compiled is not None:
            grown = many.compiled - few.compiled
            assert grown < max(2, extra // 4), (
                f"{op!r}: its compiled code allocated {many.compiled} arrays for {len(large)} samples and "
                f"{few.compiled} for {len(small)}: about one per sample. Allocate scratch arrays once per "
                f"call (or in declare_state_and_memory), not inside the loop over samples")
