"""The FFCV 1.0 adapter: what it settles when a pipeline is built, so that the per-chunk loop
calls every step one way (this package's operations unwrapped, FFCV 1.0 forms wrapped once)."""
import types
from dataclasses import replace

import numpy as np
import pytest
import torch
from numpy.random import rand as imported_rand

from ffcv_ops import (AllocationQuery, CenterCropRGBImageDecoder, Compiler, Convert, Cutout, ImageMixup,
                      IntDecoder, ModuleWrapper, NormalizeImage, Operation, Poison, RandomBrightness,
                      RandomContrast, RandomHorizontalFlip, RandomResizedCrop, RandomResizedCropRGBImageDecoder,
                      RandomSaturation, RandomTranslate, ReplaceLabel, ResizedCropRGBImageDecoder,
                      SimpleRGBImageDecoder, Squeeze, ToDevice, ToTensor, ToTorchImage, View)
from ffcv_ops.adapter import draws_from_np_random, get_center_crop, get_random_crop
from ffcv_ops.testing import make_pipeline, run_batch, run_pipeline, storage_state_of


def built(reader, field, ops):
    pipeline = make_pipeline(reader, field, ops)
    pipeline.declare()
    pipeline.generate()
    return pipeline


# ------------------------------------------------------------ this package's operations are not wrapped


def test_built_in_operations_are_called_as_they_are(small_images_file):
    image_pipelines = [
        [SimpleRGBImageDecoder(), RandomHorizontalFlip(), Cutout(4), RandomTranslate(2), RandomBrightness(0.2),
         RandomContrast(0.2), RandomSaturation(0.2), Poison(np.zeros((16, 20, 3)), np.ones((16, 20)), [1]),
         RandomResizedCrop((0.5, 1), (0.75, 4 / 3), 8), ImageMixup(0.2, False),
         NormalizeImage(np.zeros(3), np.ones(3), np.float32), ToTensor(), ToTorchImage(), ToDevice('cpu'),
         Convert(torch.float16), View(torch.int16), ModuleWrapper(torch.nn.Identity())],
        [RandomResizedCropRGBImageDecoder((8, 8)), ToTensor()],
        [CenterCropRGBImageDecoder((8, 8), 0.875)],
    ]
    for ops in image_pipelines:
        pipeline = built(small_images_file, 'image', ops)
        for step in pipeline.steps:
            assert step.call is step.code, f"{step.op!r} is wrapped"
    labels = built(small_images_file, 'label', [IntDecoder(), ReplaceLabel([3], 0), ToTensor(), Squeeze()])
    assert all(step.call is step.code for step in labels.steps)


# ------------------------------------------------------------ FFCV 1.0 call forms


class Plus(Operation):
    """``code(inputs, dst)``: FFCV 1.0's plain form, compiled."""

    def __init__(self, amount):
        super().__init__()
        self.amount = amount

    def generate_code(self):
        amount = self.amount

        def plus(inputs, dst):
            dst[:] = inputs + amount
            return dst
        return plus

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


class TimesIndexWithAttribute(Plus):
    """FFCV 1.0's ``with_indices = True`` on the code: (inputs, dst, indices)."""

    def generate_code(self):
        def times(inputs, dst, indices):
            for i in range(inputs.shape[0]):
                dst[i, 0] = inputs[i, 0] * 0 + indices[i] * 10
            return dst
        times.with_indices = True
        return times


class VarArgs(Operation):
    """FFCV 1.0's colour jitter form: ``code(images, *_)``, in place."""

    compiled = False

    def generate_code(self):
        def negate(inputs, *_):
            inputs[:] = -inputs
            return inputs
        return negate

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


def test_ffcv1_call_forms_are_wrapped_once_and_get_their_arguments(small_images_file):
    indices = np.random.default_rng(0).permutation(400)[:70]
    ops = [IntDecoder(), Plus(5), TimesIndexWithAttribute(0), Plus(1), VarArgs()]
    pipeline = built(small_images_file, 'label', ops)
    assert all(step.call is not step.code for step in pipeline.steps[1:])
    for options in [dict(), dict(chunk=7, workers=2)]:
        out = run_batch(pipeline, storage_state_of(small_images_file), indices, **options)
        np.testing.assert_array_equal(out[:, 0], -(indices * 10 + 1))


class LegacyDecoder(Operation):
    """A decoder subclassing plain Operation, code of 4 arguments, compiled, with two
    allocations (FFCV 1.0 lets an operation ask for a sequence of them)."""

    def declare_state_and_memory(self, previous_state):
        return (replace(previous_state, jit_mode=True, shape=(1,), dtype=np.dtype('<i8')),
                (AllocationQuery((1,), np.dtype('<i8')), AllocationQuery((2,), np.dtype('<i8'))))

    def generate_code(self):
        loop = Compiler.get_iterator()

        def decode(batch_indices, storage, metadata, storage_state):
            destination, scratch = storage
            for i in loop(batch_indices.shape[0]):
                scratch[i, 0] = metadata[batch_indices[i]]
                scratch[i, 1] = 100
                destination[i, 0] = scratch[i, 0] + scratch[i, 1]
            return destination[:batch_indices.shape[0]]

        return decode


def test_an_ffcv1_decoder_with_two_allocations(small_images_file):
    indices = np.random.default_rng(1).permutation(400)[:50]
    pipeline = built(small_images_file, 'label', [LegacyDecoder()])
    assert pipeline.steps[0].call is not pipeline.steps[0].code
    out = run_pipeline(small_images_file, 'label', [LegacyDecoder()], indices, chunk=16, workers=2)
    np.testing.assert_array_equal(out[:, 0], indices + 100)


class RunningCount(Operation):
    """FFCV 1.0's shared memory: set up before each batch, passed to the code last."""

    compiled = False

    def __init__(self):
        super().__init__()
        self.inits = 0

    def declare_shared_memory(self, previous_state):
        return AllocationQuery((1,), np.dtype('<i8'))

    def generate_code_for_shared_state(self):
        def init(shared):
            self.inits += 1
            shared[:] = 7
        return init

    def generate_code(self):
        def count(inputs, dst, shared):
            dst[:, 0] = inputs[:, 0] + shared[:, 0] + inputs.shape[0]
            return dst
        return count

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


def test_ffcv1_shared_memory_is_set_up_per_batch_and_passed_last(small_images_file):
    op = RunningCount()
    pipeline = built(small_images_file, 'label', [IntDecoder(), op])
    assert not pipeline.steps[1].parallel          # set up once per batch: the whole batch
    out = run_batch(pipeline, storage_state_of(small_images_file), np.arange(40), chunk=16)
    np.testing.assert_array_equal(out[:, 0], np.arange(40) + 7 + 40)
    assert op.inits == 1


def test_code_of_one_argument_is_refused_when_the_pipeline_is_built(small_images_file):
    class OneArgument(Plus):
        def generate_code(self):
            return lambda inputs: inputs

    with pytest.raises(TypeError, match=r"takes \(inputs, destination\[, indices\[, seed\]\]\).*1 argument"):
        built(small_images_file, 'label', [IntDecoder(), OneArgument(0)])


def test_a_torch_module_is_wrapped(small_images_file):
    pipeline = make_pipeline(small_images_file, 'label', [IntDecoder(), ToTensor(), torch.nn.Identity()])
    assert isinstance(pipeline.operations[2], ModuleWrapper)


# ------------------------------------------------------------ np.random use


def _uses_nothing(x, dst):
    dst[:] = x
    return dst


def _uses_np_random(x, dst):
    dst[:] = np.random.rand()
    return dst


def _uses_imported_rand(x, dst):
    dst[:] = imported_rand()
    return dst


helpers = types.SimpleNamespace()


def _draw_through_a_module(x, dst):
    dst[:] = helpers.draw()
    return dst


def test_np_random_use_is_read_from_the_code_and_what_it_calls():
    assert not draws_from_np_random(_uses_nothing)
    assert draws_from_np_random(_uses_np_random)
    assert draws_from_np_random(_uses_imported_rand)
    import ffcv_ops.adapter as adapter_module    # a module whose function draws (get_random_crop)

    def through_module(x, dst):
        return adapter_module.get_random_crop(10, 10, x, x)

    assert draws_from_np_random(through_module)

    def through_center(x, dst):
        return adapter_module.get_center_crop(10, 10, x, 0.5)

    assert not draws_from_np_random(through_center)
    inner = Compiler.compile(_uses_np_random)

    def through_a_closure(x, dst):
        return inner(x, dst)

    assert draws_from_np_random(through_a_closure)


# ------------------------------------------------------------ FFCV 1.0 crop decoders


class CenterCropTheFFCV1Way(ResizedCropRGBImageDecoder):
    def __init__(self, output_size, ratio):
        super().__init__(output_size)
        self.scale, self.ratio = None, ratio

    @property
    def get_crop_generator(self):
        return get_center_crop


class RandomCropTheFFCV1Way(ResizedCropRGBImageDecoder):
    def __init__(self, output_size):
        super().__init__(output_size)
        self.scale, self.ratio = (0.08, 1.0), (3 / 4, 4 / 3)

    @property
    def get_crop_generator(self):
        return get_random_crop


def test_a_crop_decoder_naming_its_crop_function(jpeg_file):
    indices = np.random.default_rng(2).permutation(40)
    ffcv1 = run_pipeline(jpeg_file, 'image', [CenterCropTheFFCV1Way((20, 20), 0.875)], indices)
    ours = run_pipeline(jpeg_file, 'image', [CenterCropRGBImageDecoder((20, 20), 0.875)], indices)
    np.testing.assert_array_equal(ffcv1, ours)
    first = run_pipeline(jpeg_file, 'image', [RandomCropTheFFCV1Way((16, 16))], indices, seed=3).copy()
    again = run_pipeline(jpeg_file, 'image', [RandomCropTheFFCV1Way((16, 16))], indices, seed=3, workers=2)
    np.testing.assert_array_equal(again, first)         # np.random reseeded per chunk: same crops
    other = run_pipeline(jpeg_file, 'image', [RandomCropTheFFCV1Way((16, 16))], indices, seed=4)
    assert not np.array_equal(other, first)
