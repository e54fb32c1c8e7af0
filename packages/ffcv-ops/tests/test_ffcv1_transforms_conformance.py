"""FFCV 1.0's other transforms pass the conformance kit plugin authors use."""
import numpy as np
import torch
from ffcv_format import IntField

from ffcv_ops import (ImageMixup, IntDecoder, LabelMixup, MixupToOneHot, ModuleWrapper, Poison,
                      RandomBrightness, RandomContrast, RandomResizedCrop, RandomSaturation, ReplaceLabel,
                      SimpleRGBImageDecoder, ToTensor, ToTorchImage)
from ffcv_ops.testing import OperationTests

# the kit's default file: 37 raw RGB images of 12x10 (height x width)
HEIGHT, WIDTH = 12, 10


class Labels:
    def make_field(self):
        return IntField()

    def make_samples(self):
        return [(k % 10,) for k in range(self.num_samples)]


class TestImageMixup(OperationTests):
    random = True

    def make_operation(self):
        return ImageMixup(0.4, False)


class TestImageMixupSameLambda(OperationTests):
    random = True

    def make_operation(self):
        return ImageMixup(1.0, True)


class TestLabelMixup(Labels, OperationTests):
    random = True

    def make_operation(self):
        return LabelMixup(0.4, False)


class TestMixupToOneHot(Labels, OperationTests):
    random = True

    def preceding_operations(self):
        return [IntDecoder(), LabelMixup(0.4, False), ToTensor()]

    def make_operation(self):
        return MixupToOneHot(10)


class TestPoison(OperationTests):
    def make_operation(self):
        rng = np.random.default_rng(3)
        alpha = np.zeros((HEIGHT, WIDTH))
        alpha[3:9, 2:8] = 0.7
        return Poison(rng.uniform(0, 255, (HEIGHT, WIDTH, 3)), alpha, indices=[30, 1, 7, 12, 20, 36])


class TestReplaceLabel(Labels, OperationTests):
    def make_operation(self):
        return ReplaceLabel([5, 0, 33, 18], 99)


class TestRandomResizedCrop(OperationTests):
    random = True

    def make_operation(self):
        return RandomResizedCrop((0.2, 1.0), (3 / 4, 4 / 3), 7)


class TestRandomBrightness(OperationTests):
    random = True

    def make_operation(self):
        return RandomBrightness(0.5)


class TestRandomContrast(OperationTests):
    random = True

    def make_operation(self):
        return RandomContrast(0.5)


class TestRandomSaturation(OperationTests):
    random = True

    def make_operation(self):
        return RandomSaturation(0.5)


class Flip(torch.nn.Module):
    def forward(self, x):
        return x.flip(-1)


class TestModuleWrapper(OperationTests):
    allocation_free = False      # a torch module's result is a new tensor

    def preceding_operations(self):
        return [SimpleRGBImageDecoder(), ToTensor(), ToTorchImage()]

    def make_operation(self):
        return ModuleWrapper(Flip())
