"""The built-in decoders and transforms pass the conformance kit plugin authors use."""
import time

import numba
import numpy as np
import pytest
import torch
from ffcv_format import BytesField, FloatField, IntField, NDArrayField, RGBImageField
from ffcv_format.testing import photo_like_image

from ffcv_ops import (AllocationQuery, BytesDecoder, CenterCropRGBImageDecoder, Compiler, Convert, Cutout,
                      FloatDecoder, IntDecoder, NDArrayDecoder, NormalizeImage, Operation,
                      RandomHorizontalFlip, RandomResizedCropRGBImageDecoder, RandomTranslate,
                      SimpleRGBImageDecoder, Squeeze,
                      ToDevice, ToTensor, ToTorchImage, View)
from ffcv_ops.testing import OperationTests, measure_allocations

MEAN, STD = [120.0, 110.0, 100.0], [60.0, 55.0, 50.0]


class VaryingSizeJpegs:
    def make_field(self):
        return RGBImageField(write_mode='jpg')

    def make_samples(self):
        rng = np.random.default_rng(0)
        return [(photo_like_image(rng, int(rng.integers(10, 40)), int(rng.integers(10, 40))),)
                for _ in range(self.num_samples)]


class Labels:
    def make_field(self):
        return IntField()

    def make_samples(self):
        return [(k * 3 - 50,) for k in range(self.num_samples)]


# ------------------------------------------------------------ decoders


class TestIntDecoder(Labels, OperationTests):
    def make_operation(self):
        return IntDecoder()


class TestFloatDecoder(OperationTests):
    def make_field(self):
        return FloatField()

    def make_samples(self):
        return [(k / 7,) for k in range(self.num_samples)]

    def make_operation(self):
        return FloatDecoder()


class TestBytesDecoder(OperationTests):
    def make_field(self):
        return BytesField()

    def make_samples(self):
        return [(bytes(range(k % 50)),) for k in range(self.num_samples)]

    def make_operation(self):
        return BytesDecoder()


class TestNDArrayDecoder(OperationTests):
    def make_field(self):
        return NDArrayField(np.dtype('float32'), (2, 5))

    def make_samples(self):
        return [(np.full((2, 5), k, np.float32),) for k in range(self.num_samples)]

    def make_operation(self):
        return NDArrayDecoder()


class TestSimpleRGBImageDecoder(OperationTests):
    def make_operation(self):
        return SimpleRGBImageDecoder()


class TestRandomResizedCrop(VaryingSizeJpegs, OperationTests):
    random = True

    def make_operation(self):
        return RandomResizedCropRGBImageDecoder((8, 12))


class TestCenterCrop(VaryingSizeJpegs, OperationTests):
    def make_operation(self):
        return CenterCropRGBImageDecoder((9, 9))


# ------------------------------------------------------------ transforms


class TestRandomHorizontalFlip(OperationTests):
    random = True

    def make_operation(self):
        return RandomHorizontalFlip()


class TestRandomTranslate(OperationTests):
    random = True

    def make_operation(self):
        return RandomTranslate(3, (1, 2, 3))


class TestCutout(OperationTests):
    random = True

    def make_operation(self):
        return Cutout(4, (1, 2, 3))


@pytest.mark.parametrize('dtype', [np.float32, np.float16])
class TestNormalizeImage(OperationTests):
    @pytest.fixture(autouse=True)
    def _dtype(self, dtype):
        self.dtype = dtype

    def make_operation(self):
        return NormalizeImage(MEAN, STD, self.dtype)


class TestNormalizeImageTorch(OperationTests):
    def preceding_operations(self):
        return [SimpleRGBImageDecoder(), ToTensor(), ToTorchImage()]

    def make_operation(self):
        return NormalizeImage(MEAN, STD, np.float32)


class TestToTensor(OperationTests):
    def make_operation(self):
        return ToTensor()


class TestToTorchImage(OperationTests):
    def preceding_operations(self):
        return [SimpleRGBImageDecoder(), ToTensor()]

    def make_operation(self):
        return ToTorchImage()


class TestToTorchImageContiguous(TestToTorchImage):
    def make_operation(self):
        return ToTorchImage(channels_last=False)


class TestToDevice(TestToTorchImage):
    def make_operation(self):
        return ToDevice('cpu')


class TestConvert(Labels, OperationTests):
    def make_operation(self):
        return Convert(np.float16)


class TestConvertTensor(Labels, OperationTests):
    def preceding_operations(self):
        return [IntDecoder(), ToTensor()]

    def make_operation(self):
        return Convert(torch.float64)


class TestView(Labels, OperationTests):
    def make_operation(self):
        return View(np.uint64)


class TestSqueeze(Labels, OperationTests):
    def preceding_operations(self):
        return [IntDecoder(), ToTensor()]

    def make_operation(self):
        return Squeeze()


# ------------------------------------------------------------ the kit catches broken operations


class Shifted(Operation):
    """An operation whose result depends on where its chunk starts: it numbers rows from 0
    in every call instead of using the sample indices."""

    def generate_code(self):
        loop = Compiler.get_iterator()

        def shifted(inputs, dst):
            for i in loop(inputs.shape[0]):
                dst[i, 0] = i
            return dst

        return shifted

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


class WrongShape(Shifted):
    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery((2,), previous_state.dtype)


class BrokenChunking(Labels, OperationTests):
    def make_operation(self):
        return Shifted()


class BrokenShape(Labels, OperationTests):
    def make_operation(self):
        return WrongShape()


def test_the_kit_catches_an_operation_that_depends_on_chunks():
    with pytest.raises(AssertionError, match='depends on the chunks'):
        BrokenChunking().test_same_result_whatever_the_chunks()
    BrokenChunking().test_declare_state_and_memory()


def test_the_kit_catches_output_that_is_not_the_declared_shape():
    with pytest.raises(AssertionError, match=r"declared samples of shape \(1,\)"):
        BrokenShape().test_output_has_the_declared_shape_and_dtype()


def test_the_kit_catches_a_random_operation_that_ignores_the_seed():
    class NotRandom(Labels, OperationTests):
        random = True

        def make_operation(self):
            return Convert(np.int64)

    with pytest.raises(AssertionError, match='same result for two seeds'):
        NotRandom().test_same_seed_same_result()


class AsFloatCopy(Operation):
    """Writes into its buffer, but through a float64 copy of the batch made every call."""

    is_parallel = True
    compiled = False

    def generate_code(self):
        def as_float(images, destination, indices, seed):
            destination[:images.shape[0]] = images.astype(np.float64) * 0.5
            return destination[:images.shape[0]]

        return as_float

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


class FreshOutput(AsFloatCopy):
    """Asks for a buffer and returns a new array instead."""

    def generate_code(self):
        return lambda images, destination, indices, seed: images + 1


@numba.njit(nogil=True)
def _halve_each_sample_via_a_new_array(images):
    for i in range(images.shape[0]):
        copy = np.empty(images.shape[1:], images.dtype)     # one allocation per sample
        copy[:] = images[i] // 2
        images[i] = copy


class AllocatesPerSample(AsFloatCopy):
    def generate_code(self):
        def halve(images, destination, indices, seed):
            _halve_each_sample_via_a_new_array(images)
            return images

        return halve

    def declare_state_and_memory(self, previous_state):
        return previous_state, None


class SharedScratch(AsFloatCopy):
    """Keeps one scratch buffer for every call: threads overwrite each other's rows."""

    def generate_code(self):
        scratch = {}

        def shared(images, destination, indices, seed):
            rows = scratch.setdefault('rows', np.empty((64, *images.shape[1:]), images.dtype))
            n = images.shape[0]
            rows[:n] = images + indices.reshape(-1, 1, 1, 1).astype(images.dtype)
            time.sleep(0.002)     # lets another thread write the scratch in between
            destination[:n] = rows[:n]
            return destination[:n]

        return shared


def _kit_for(operation_class):
    class Kit(OperationTests):
        def make_operation(self):
            return operation_class()
    return Kit()


def test_the_kit_catches_a_temporary_copy_of_the_batch():
    with pytest.raises(AssertionError, match=r"bytes per sample \(a sample is 360 bytes.*A temporary array"):
        _kit_for(AsFloatCopy).test_allocates_nothing_per_sample()
    _kit_for(AsFloatCopy).test_output_lies_in_the_pipelines_buffers()


def test_the_kit_catches_an_output_that_is_not_in_the_buffers():
    with pytest.raises(AssertionError, match="output is memory of its own, not the buffer it asked for"):
        _kit_for(FreshOutput).test_output_lies_in_the_pipelines_buffers()


def test_the_kit_catches_compiled_code_allocating_per_sample():
    assert measure_allocations(lambda: _halve_each_sample_via_a_new_array(np.ones((3, 4, 4, 3), np.uint8))) \
        .compiled is not None
    with pytest.raises(AssertionError, match="compiled code allocated .* about one per sample"):
        _kit_for(AllocatesPerSample).test_allocates_nothing_per_sample()


def test_the_kit_catches_state_shared_by_threads():
    with pytest.raises(AssertionError, match="4 threads gave another result than 1"):
        _kit_for(SharedScratch).test_same_result_with_one_and_several_threads()


def test_measure_allocations_sees_numpy_and_compiled_memory():
    held = measure_allocations(lambda: np.ones(1 << 20, np.uint8))
    assert held.traced_peak >= 1 << 20 and held.retained < 1 << 20
    kept = []
    assert measure_allocations(lambda: kept.append(np.ones(1 << 16, np.uint8))).retained >= 1 << 16
    assert measure_allocations(lambda: None).traced_peak < 4096
