"""The Operation protocol: custom operations written the FFCV 1.0 way, chunking, arities,
the compiler switch, and the errors a pipeline reports."""
import sys
import threading
from dataclasses import replace

import numpy as np
import pytest
from ffcv_format import BytesField, IntField
from ffcv_format.testing import write_dataset
from numba import njit
from numba.core.registry import CPUDispatcher

from ffcv_ops import (AllocationQuery, Compiler, Decoder, IntDecoder, Operation, RandomHorizontalFlip,
                      SimpleRGBImageDecoder, Squeeze, State, ToTensor)
from ffcv_ops.testing import make_pipeline, run_batch, run_pipeline, storage_state_of

N = 400


class AddOne(Operation):
    """Written exactly as for FFCV 1.0."""

    def generate_code(self):
        parallel_range = Compiler.get_iterator()

        def add_one(inputs, dst):
            for i in parallel_range(inputs.shape[0]):
                dst[i] = inputs[i] + 1
            return dst

        return add_one

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


class Recorder(Operation):
    """Doubles its input and records the size of every call (runs as Python)."""

    compiled = False

    def __init__(self, use_iterator, is_parallel=None):
        super().__init__()
        self.use_iterator = use_iterator
        if is_parallel is not None:
            self.is_parallel = is_parallel
        self.calls = []
        self.lock = threading.Lock()

    def generate_code(self):
        loop = Compiler.get_iterator() if self.use_iterator else range
        calls, lock = self.calls, self.lock

        def double(inputs, dst):
            with lock:
                calls.append(inputs.shape[0])
            for i in loop(inputs.shape[0]):
                dst[i] = inputs[i] * 2
            return dst

        return double

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


def labels(reader, ops, indices=None, **options):
    indices = np.arange(N) if indices is None else indices
    return run_pipeline(reader, 'label', [IntDecoder(), *ops], indices, **options)


def prepared(reader, ops, field='label'):
    pipeline = make_pipeline(reader, field, ops)
    pipeline.declare()
    pipeline.generate()
    return pipeline


def test_ffcv1_style_operation_runs_in_chunks(small_images_file):
    indices = np.random.default_rng(0).permutation(N)
    pipeline = prepared(small_images_file, [IntDecoder(), AddOne()])
    assert isinstance(pipeline.steps[1].code, CPUDispatcher), "jit-mode code is compiled with numba"
    assert pipeline.steps[1].parallel and pipeline.parallel_length == 2
    state = storage_state_of(small_images_file)
    whole = run_batch(pipeline, state, indices, chunk=N)
    np.testing.assert_array_equal(whole[:, 0], indices + 1)
    for chunk, workers in [(16, 1), (7, 2), (1, 1)]:
        out = run_batch(pipeline, state, indices, chunk=chunk, workers=workers)
        np.testing.assert_array_equal(out, whole)


def test_ffcv1_style_operation_on_images(small_images_file):
    indices = np.arange(50)
    out = run_pipeline(small_images_file, 'image', [SimpleRGBImageDecoder(), AddOne()], indices)
    originals = np.stack([small_images_file.read_field(i, 'image') for i in indices])
    np.testing.assert_array_equal(out, originals + np.uint8(1))


class NegateInPlace(Operation):
    """FFCV 1.0 style in-place operation: no memory asked, ``dst`` is None."""

    def generate_code(self):
        loop = Compiler.get_iterator()

        def negate(inputs, dst):
            for i in loop(inputs.shape[0]):
                inputs[i] = -inputs[i]
            return inputs

        return negate

    def declare_state_and_memory(self, previous_state):
        return previous_state, None


class SelfCompiled(AddOne):
    """Compiles its own code (the pipeline must not compile it twice)."""

    def generate_code(self):
        return Compiler.compile(super().generate_code())


def test_in_place_and_self_compiled_operations(small_images_file):
    indices = np.random.default_rng(6).permutation(N)[:70]
    for enabled in (True, False):
        Compiler.set_enabled(enabled)
        try:
            out = labels(small_images_file, [NegateInPlace(), SelfCompiled()], indices, chunk=16, workers=2)
        finally:
            Compiler.set_enabled(True)
        np.testing.assert_array_equal(out[:, 0], 1 - indices)


class TimesThreeNewArray(Operation):
    """Returns a new array per call instead of writing into memory of the pipeline."""

    def generate_code(self):
        loop = Compiler.get_iterator()

        def times_three(inputs, dst):
            out = np.empty_like(inputs)
            for i in loop(inputs.shape[0]):
                out[i] = inputs[i] * 3
            return out

        return times_three

    def declare_state_and_memory(self, previous_state):
        return previous_state, None


def test_chunks_returning_new_arrays_are_joined(small_images_file):
    indices = np.random.default_rng(7).permutation(N)[:50]
    ops = [TimesThreeNewArray(), ToTensor(), Squeeze()]
    out = labels(small_images_file, ops, indices, chunk=16, workers=2)
    assert out.tolist() == (indices * 3).tolist()


def test_operation_using_the_iterator_is_split_into_chunks(small_images_file):
    op = Recorder(use_iterator=True)
    out = labels(small_images_file, [op], np.arange(40))
    assert sorted(op.calls) == [8, 16, 16]
    np.testing.assert_array_equal(out[:, 0], np.arange(40) * 2)


def test_operation_without_the_iterator_gets_the_whole_batch(small_images_file):
    op = Recorder(use_iterator=False)
    pipeline = prepared(small_images_file, [IntDecoder(), op])
    assert not pipeline.steps[1].parallel and pipeline.parallel_length == 1
    out = run_batch(pipeline, storage_state_of(small_images_file), np.arange(40))
    assert op.calls == [40]
    np.testing.assert_array_equal(out[:, 0], np.arange(40) * 2)


def test_explicit_is_parallel_wins_over_the_inference(small_images_file):
    forced_serial, forced_parallel = Recorder(True, is_parallel=False), Recorder(False, is_parallel=True)
    labels(small_images_file, [forced_serial], np.arange(40))
    labels(small_images_file, [forced_parallel], np.arange(40))
    assert forced_serial.calls == [40] and sorted(forced_parallel.calls) == [8, 16, 16]


def test_only_the_leading_parallel_operations_run_in_chunks(small_images_file):
    first, serial, after = Recorder(True), Recorder(False), Recorder(True)
    out = labels(small_images_file, [first, serial, after], np.arange(40))
    assert sorted(first.calls) == [8, 16, 16] and serial.calls == [40] and after.calls == [40]
    np.testing.assert_array_equal(out[:, 0], np.arange(40) * 8)


class WriteIndices(Operation):
    """``code(inputs, dst, indices)``: each row gets its sample index."""

    def generate_code(self):
        loop = Compiler.get_iterator()

        def write(inputs, dst, indices):
            for i in loop(inputs.shape[0]):
                dst[i, 0] = indices[i]
            return dst

        return write

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


class WriteIndicesAndSeed(WriteIndices):
    """``code(inputs, dst, indices, seed)``: index plus the seed's last three digits."""

    def generate_code(self):
        loop = Compiler.get_iterator()

        def write(inputs, dst, indices, seed):
            for i in loop(inputs.shape[0]):
                dst[i, 0] = indices[i] + np.int64(seed % np.uint64(1000))
            return dst

        return write


class SeedRecorder(WriteIndices):
    compiled = False

    def __init__(self):
        super().__init__()
        self.seeds = set()

    def generate_code(self):
        seeds = self.seeds

        def write(inputs, dst, indices, seed):
            seeds.add(seed)
            dst[:, 0] = indices
            return dst

        return write


def test_three_argument_code_gets_the_chunks_indices(small_images_file):
    indices = np.random.default_rng(1).permutation(N)[:123]
    for options in [dict(), dict(chunk=5, workers=2), dict(chunk=123)]:
        out = labels(small_images_file, [WriteIndices()], indices, **options)
        np.testing.assert_array_equal(out[:, 0], indices)


def test_four_argument_code_gets_indices_and_its_seed(small_images_file):
    indices = np.random.default_rng(2).permutation(N)[:77]
    pipeline = make_pipeline(small_images_file, 'label', [IntDecoder(), WriteIndices()])
    expected_seed = pipeline.op_seeds(8, 3, 0)[1]
    out = labels(small_images_file, [WriteIndicesAndSeed()], indices, seed=8, epoch=3, chunk=10)
    np.testing.assert_array_equal(out[:, 0], indices + int(expected_seed) % 1000)
    recorder = SeedRecorder()
    out = labels(small_images_file, [recorder], indices, seed=8, epoch=3, chunk=10)
    np.testing.assert_array_equal(out[:, 0], indices)
    assert recorder.seeds == {expected_seed}


def test_op_seeds_depend_on_seed_epoch_pipeline_and_position(small_images_file):
    pipeline = make_pipeline(small_images_file, 'label', [IntDecoder(), AddOne(), AddOne()])
    seeds = pipeline.op_seeds(0, 0, 0)
    assert len(seeds) == 3 and len(set(seeds)) == 3 and all(isinstance(s, np.uint64) for s in seeds)
    assert pipeline.op_seeds(0, 0, 0) == seeds
    for other in [pipeline.op_seeds(1, 0, 0), pipeline.op_seeds(0, 1, 0), pipeline.op_seeds(0, 0, 1)]:
        assert not set(other) & set(seeds)


def test_compiler_disabled_runs_the_same_operations_as_python(small_images_file):
    indices = np.random.default_rng(3).permutation(N)[:100]
    ops = lambda: [IntDecoder(), AddOne(), WriteIndicesAndSeed(), AddOne()]  # noqa: E731
    compiled = run_pipeline(small_images_file, 'label', ops(), indices, seed=1, chunk=9)
    Compiler.set_enabled(False)
    try:
        pipeline = prepared(small_images_file, ops())
        assert not any(isinstance(step.code, CPUDispatcher) for step in pipeline.steps)
        assert Compiler.get_iterator() is range
        python = run_batch(pipeline, storage_state_of(small_images_file), indices, seed=1, chunk=9)
    finally:
        Compiler.set_enabled(True)
    np.testing.assert_array_equal(python, compiled)
    assert Compiler.get_iterator() is not range


class NumpyRandomNoise(Operation):
    """An FFCV 1.0 random operation: numba's ``np.random`` inside its compiled loop."""

    def generate_code(self):
        loop = Compiler.get_iterator()

        def noise(inputs, dst):
            for i in loop(inputs.shape[0]):
                dst[i, 0] = inputs[i, 0] * 1000 + np.random.randint(0, 1000)
            return dst

        return noise

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


@njit
def _advance_numba_random(n):
    total = 0.0
    for _ in range(n):
        total += np.random.random()
    return total


def test_numba_np_random_is_reproducible_whatever_the_threads(small_images_file):
    indices = np.random.default_rng(4).permutation(N)
    pipeline = prepared(small_images_file, [IntDecoder(), NumpyRandomNoise()])
    state = storage_state_of(small_images_file)
    first = run_batch(pipeline, state, indices, seed=11, epoch=2)
    np.testing.assert_array_equal(first[:, 0] // 1000, indices)
    assert len(np.unique(first[:, 0] % 1000)) > 200, "the draws are not random"
    num_chunks = -(-N // 16)
    for layout in [dict(), dict(workers=2), dict(workers=3, chunk_order=list(range(num_chunks))[::-1]),
                   dict(workers=4, chunk_order=list(np.random.default_rng(5).permutation(num_chunks)))]:
        _advance_numba_random(17)      # whatever state the threads' generators are in
        np.testing.assert_array_equal(run_batch(pipeline, state, indices, seed=11, epoch=2, **layout), first,
                                      err_msg=f"{layout}")
    for other in [dict(seed=12, epoch=2), dict(seed=11, epoch=3)]:
        assert (run_batch(pipeline, state, indices, **other) != first).mean() > 0.9


def test_np_random_is_reproducible_with_the_compiler_disabled(small_images_file):
    indices = np.arange(100)
    Compiler.set_enabled(False)
    try:
        pipeline = prepared(small_images_file, [IntDecoder(), NumpyRandomNoise()])
        state = storage_state_of(small_images_file)
        first = run_batch(pipeline, state, indices, seed=1, chunk=10)
        np.random.random(13)
        np.testing.assert_array_equal(run_batch(pipeline, state, indices, seed=1, chunk=10), first)
    finally:
        Compiler.set_enabled(True)


# ------------------------------------------------------------ FFCV 1.0 style decoder


class SumOfBytesDecoder(Decoder):
    """A decoder written the FFCV 1.0 way: compiled, reading with ``memory_read``."""

    def declare_state_and_memory(self, previous_state):
        return replace(previous_state, jit_mode=True, shape=(2,), dtype=np.dtype('<i8')), \
            AllocationQuery((2,), np.dtype('<i8'))

    def generate_code(self):
        mem_read = self.memory_read
        loop = Compiler.get_iterator()

        def decode(batch_indices, destination, metadata, storage_state):
            for ix in loop(batch_indices.shape[0]):
                data = mem_read(metadata[batch_indices[ix]]['ptr'], storage_state)
                destination[ix, 0] = data.shape[0]
                destination[ix, 1] = data.astype(np.int64).sum()
            return destination

        return decode


@pytest.fixture(scope='module')
def bytes_file(tmp_path_factory):
    rng = np.random.default_rng(8)
    blobs = [rng.integers(0, 256, int(rng.integers(1, 500)), dtype=np.uint8).tobytes() for _ in range(60)]
    return write_dataset(tmp_path_factory.mktemp('bytes') / 'bytes.beton',
                         {'blob': BytesField(), 'n': IntField()}, [(b, k) for k, b in enumerate(blobs)])


def test_ffcv1_style_decoder_with_memory_read(bytes_file):
    indices = np.random.default_rng(9).permutation(60)
    out = run_pipeline(bytes_file, 'blob', [SumOfBytesDecoder()], indices, chunk=7, workers=2)
    for row, i in zip(out, indices):
        blob = bytes_file.read_field(i, 'blob')
        assert row.tolist() == [blob.size, int(blob.astype(np.int64).sum())]


class PlainOperationSumOfBytesDecoder(Operation):
    """The same decoder subclassing Operation, as FFCV 1.0 plugins do."""

    declare_state_and_memory = SumOfBytesDecoder.declare_state_and_memory
    generate_code = SumOfBytesDecoder.generate_code


class FlaggedDecoderOp(PlainOperationSumOfBytesDecoder):
    is_decoder = True


FlaggedDecoderOp.__name__ = 'SumOfBytes'


@pytest.mark.parametrize('decoder_type', [PlainOperationSumOfBytesDecoder, FlaggedDecoderOp])
def test_ffcv1_decoder_subclassing_operation_is_the_decoder(bytes_file, decoder_type):
    indices = np.arange(60)
    pipeline = make_pipeline(bytes_file, 'blob', [decoder_type()])
    assert len(pipeline.operations) == 1          # no default decoder put in front of it
    out = run_pipeline(bytes_file, 'blob', [decoder_type()], indices, chunk=16)
    assert [int(v) for v in out[:, 0]] == [bytes_file.read_field(i, 'blob').size for i in indices]


def test_torch_operation_after_to_tensor_is_not_compiled(small_images_file):
    class Double(Operation):
        def generate_code(self):
            return lambda batch, dst: batch * 2

        def declare_state_and_memory(self, previous_state):
            return previous_state, None

    pipeline = prepared(small_images_file, [IntDecoder(), ToTensor(), Double()])
    assert not isinstance(pipeline.steps[2].code, CPUDispatcher)
    out = run_batch(pipeline, storage_state_of(small_images_file), np.arange(10))
    assert out[:, 0].tolist() == list(range(0, 20, 2))


# ------------------------------------------------------------ errors


class ReturnsATuple(Operation):
    def generate_code(self):
        return lambda inputs, dst: inputs

    def declare_state_and_memory(self, previous_state):
        return previous_state, (previous_state.shape, previous_state.dtype)


def test_an_allocation_that_is_not_an_allocation_query(small_images_file):
    with pytest.raises(TypeError, match=r"ReturnsATuple\(\) declared .* not an AllocationQuery"):
        labels(small_images_file, [ReturnsATuple()])


def test_a_state_that_is_not_a_state(small_images_file):
    class ReturnsAShape(ReturnsATuple):
        def declare_state_and_memory(self, previous_state):
            return previous_state.shape, None

    with pytest.raises(TypeError, match=r"ReturnsAShape\(\) declared the state \(1,\), not a State"):
        labels(small_images_file, [ReturnsAShape()])


def test_declare_that_returns_one_value(small_images_file):
    class ReturnsOneValue(ReturnsATuple):
        def declare_state_and_memory(self, previous_state):
            return previous_state

    with pytest.raises(TypeError, match=r"pipeline 'label', ReturnsOneValue\(\): cannot unpack"):
        labels(small_images_file, [ReturnsOneValue()])


def test_errors_in_declare_name_the_operation_and_keep_their_type(small_images_file):
    class Picky(Exception):
        def __init__(self, code, reason):
            super().__init__(f"{code}: {reason}")

    class Fails(ReturnsATuple):
        def declare_state_and_memory(self, previous_state):
            raise Picky(7, 'no')

    with pytest.raises(Picky, match=r"7: no") as info:
        labels(small_images_file, [Fails()])
    if sys.version_info >= (3, 11):  # the context goes in a note (PEP 678)
        assert any("pipeline 'label', Fails()" in note for note in info.value.__notes__)


def test_the_decoder_must_come_first(small_images_file):
    with pytest.raises(ValueError, match=r"the decoder SimpleRGBImageDecoder\(\) must come first"):
        ops = [RandomHorizontalFlip(), SimpleRGBImageDecoder()]
        run_pipeline(small_images_file, 'image', ops, np.arange(4))


def test_not_an_operation(small_images_file):
    with pytest.raises(TypeError, match=r"'label': <lambda> is not an Operation|is not an Operation"):
        labels(small_images_file, [lambda x: x])


def test_generate_code_that_returns_no_function(small_images_file):
    class NoCode(ReturnsATuple):
        def generate_code(self):
            return None

        def declare_state_and_memory(self, previous_state):
            return previous_state, None

    with pytest.raises(TypeError, match=r"NoCode\(\)\.generate_code\(\) returned None"):
        labels(small_images_file, [NoCode()])


def test_set_num_threads():
    before = Compiler.num_threads
    try:
        Compiler.set_num_threads(3)
        assert Compiler.num_threads == 3
        with pytest.raises(ValueError, match='at least 1'):
            Compiler.set_num_threads(0)
    finally:
        Compiler.num_threads = before


def test_state_and_allocation_query_are_ffcv1_compatible():
    state = State(jit_mode=True, device=None, shape=(3,), dtype=np.dtype('u1'))
    assert replace(state, shape=(4,)).shape == (4,) and state.shape == (3,)
    query = AllocationQuery((2, 2), np.float32)
    assert query.device is None and query.shape == (2, 2)


def test_generate_before_declare_is_an_error(small_images_file):
    pipeline = make_pipeline(small_images_file, 'label', [IntDecoder()])
    with pytest.raises(RuntimeError, match=r"call declare\(\) before generate\(\)"):
        pipeline.generate()


def _declared(reader, field, ops):
    pipeline = make_pipeline(reader, field, ops)
    pipeline.declare()
    return pipeline


def test_chunk_size_grows_for_small_samples_only(small_images_file):
    from ffcv_ops import NormalizeImage, RandomResizedCropRGBImageDecoder
    from ffcv_ops.pipeline import CHUNK_BYTES, CHUNK_SIZE, MAX_CHUNK_SIZE
    # 16x20x3 uint8 (960 B) -> float32 (3,840 B): about CHUNK_BYTES per chunk, a power of two
    normalized = _declared(small_images_file, 'image', [SimpleRGBImageDecoder(),
                                                         NormalizeImage([1, 2, 3], [1, 1, 1])])
    size = normalized.chunk_size()
    assert size == min(MAX_CHUNK_SIZE, 1 << (CHUNK_BYTES // 3840 - 1).bit_length())
    assert size > _declared(small_images_file, 'image', [RandomResizedCropRGBImageDecoder((224, 224))]).chunk_size()
    # large samples keep the smallest chunk; scalars get the largest
    assert _declared(small_images_file, 'image', [RandomResizedCropRGBImageDecoder((224, 224))]).chunk_size() \
        == CHUNK_SIZE
    assert _declared(small_images_file, 'label', [IntDecoder()]).chunk_size() == MAX_CHUNK_SIZE


def test_host_buffers_start_on_a_page_boundary(small_images_file):
    from ffcv_ops import NormalizeImage
    pipeline = _declared(small_images_file, 'image', [SimpleRGBImageDecoder(), NormalizeImage([1, 2, 3], [1, 1, 1])])
    for batch_size in (1, 7, 256):
        buffers = [b for b in pipeline.allocate(batch_size) if b is not None]
        assert len(buffers) == 2
        for buffer in buffers:
            assert buffer.ctypes.data % 4096 == 0 and buffer.flags.c_contiguous
            assert buffer.shape[0] == batch_size
            buffer[...] = 1   # the whole view is writable memory of its own


def test_join_takes_chunks_that_are_their_rows_of_the_decoders_buffer_without_copying():
    from ffcv_ops.pipeline import FIRST_BUFFER_ROWS, _join
    buffer = np.arange(40).reshape(10, 4)
    bounds = [(0, 4), (4, 8), (8, 9)]
    whole = _join([FIRST_BUFFER_ROWS] * 3, bounds, [buffer], 9)
    assert np.shares_memory(whole, buffer) and whole.shape == (9, 4)
    np.testing.assert_array_equal(whole, buffer[:9])
    # one chunk answered a new array: the others are taken as their rows and all concatenated
    other = -np.ones((4, 4), dtype=buffer.dtype)
    joined = _join([FIRST_BUFFER_ROWS, other, FIRST_BUFFER_ROWS], bounds, [buffer], 9)
    np.testing.assert_array_equal(joined, np.concatenate([buffer[0:4], other, buffer[8:9]]))
