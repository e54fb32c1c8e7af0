"""The built-in decoders and transforms pass the conformance kit plugin authors use."""
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
from ffcv_ops.testing import OperationTests

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
