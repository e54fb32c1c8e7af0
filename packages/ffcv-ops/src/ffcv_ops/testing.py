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
the declared shape and dtype, and the result is the same whether the batch runs as one
chunk or as several, in any order, on several threads.
"""
import atexit
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from ffcv_format import RGBImageField
from ffcv_format.testing import write_dataset

from .allocation_query import AllocationQuery
from .decoders import Decoder
from .pipeline import CHUNK_SIZE, Pipeline
from .state import State

__all__ = ['storage_state_of', 'make_pipeline', 'run_batch', 'run_pipeline', 'to_numpy',
           'OperationTests']


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
    """

    #: set to True for operations that draw random numbers (checked: the seed matters)
    random = False
    #: samples in the tiny file
    num_samples = 37

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
