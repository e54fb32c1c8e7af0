"""The Loader with image pipelines: determinism, outputs, filters, progressive resizing."""
import numpy as np
import pytest
import torch
from ffcv_loader import Loader, OrderOption
from ffcv_loader.testing import images_file
from ffcv_ops import (AllocationQuery, Compiler, Cutout, IntDecoder, Operation, PipelineSpec,
                      RandomHorizontalFlip, RandomResizedCropRGBImageDecoder, Squeeze, ToTensor,
                      ToTorchImage)


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    path, samples = images_file(str(tmp_path_factory.mktemp('images') / 'images.beton'), 200)
    return path, samples


def augmented_pipelines(size=48):
    return {'image': [RandomResizedCropRGBImageDecoder((size, size)), RandomHorizontalFlip(), Cutout(8),
                      ToTensor(), ToTorchImage()],
            'label': [IntDecoder(), ToTensor(), Squeeze()]}


def run_epochs(loader, epochs):
    out = []
    for _ in range(epochs):
        out.append([(im.clone(), lab.clone()) for im, lab in loader])
    return out


def test_same_seed_same_batches_whatever_num_workers(images):
    path, _ = images
    runs = [run_epochs(Loader(path, batch_size=24, num_workers=w, order=OrderOption.RANDOM, seed=11,
                              drop_last=False, pipelines=augmented_pipelines()), 2) for w in (1, 2, 3)]
    for other in runs[1:]:
        for epoch_a, epoch_b in zip(runs[0], other):
            assert len(epoch_a) == len(epoch_b) == 9
            for (ia, la), (ib, lb) in zip(epoch_a, epoch_b):
                assert torch.equal(la, lb)
                assert torch.equal(ia, ib)
    # a different epoch or seed gives different augmentations of the same sample
    first = {int(l): im for im, l in zip(*map(torch.cat, zip(*runs[0][0])))}
    second = {int(l): im for im, l in zip(*map(torch.cat, zip(*runs[0][1])))}
    assert sum(not torch.equal(first[k], second[k]) for k in first) > 150


def test_outputs_shapes_dtypes_and_labels(images):
    path, samples = images
    loader = Loader(path, batch_size=32, num_workers=2, order=OrderOption.SEQUENTIAL,
                    pipelines=augmented_pipelines(40), drop_last=True)
    seen = []
    for image, label in loader:
        assert image.shape == (32, 3, 40, 40) and image.dtype == torch.uint8
        assert image.is_contiguous(memory_format=torch.channels_last)
        assert label.shape == (32,) and label.dtype == torch.int64
        seen.append(label.numpy().copy())
    assert np.array_equal(np.concatenate(seen), np.arange(192))


def test_default_decoders_dropped_fields_and_extra_outputs(images):
    path, samples = images
    loader = Loader(path, batch_size=10, num_workers=2, pipelines={
        'image': None,
        'label2': PipelineSpec('label', transforms=[ToTensor()]),
    })
    label, label2 = next(iter(loader))
    # FFCV 1.0's default pipeline: the field's decoder, then ToTensor
    assert isinstance(label, torch.Tensor) and label.shape == (10, 1) and label.dtype == torch.int64
    assert label[:, 0].tolist() == list(range(10))
    assert isinstance(label2, torch.Tensor) and torch.equal(label2, label)
    assert [type(op).__name__ for op in loader.pipelines[0].operations] == ['IntDecoder', 'ToTensor']
    # an empty list and a PipelineSpec naming only the field are the default pipeline too
    for spec in ([], PipelineSpec('label')):
        default = Loader(path, batch_size=10, num_workers=1, pipelines={'image': None, 'label': spec})
        assert [type(op).__name__ for op in default.pipelines[0].operations] == ['IntDecoder', 'ToTensor']
    # a decoder alone stays numpy
    numpy_labels = Loader(path, batch_size=10, num_workers=1, pipelines={'image': None, 'label': [IntDecoder()]})
    assert isinstance(next(iter(numpy_labels))[0], np.ndarray)
    with pytest.raises(ValueError, match='nothing to load'):
        Loader(path, batch_size=10, pipelines={'image': None, 'label': None})
    with pytest.raises(ValueError, match='does not have'):
        Loader(path, batch_size=10, pipelines={'x': PipelineSpec('nope')})


def test_filter_keeps_matching_samples(images):
    path, _ = images
    loader = Loader(path, batch_size=16, num_workers=2, drop_last=False, seed=2, order=OrderOption.RANDOM,
                    pipelines={'image': None})
    even = loader.filter('label', lambda label: label % 2 == 0)
    ids = np.concatenate([b[0][:, 0].numpy().copy() for b in even])  # buffers are reused
    assert np.array_equal(np.sort(ids), np.arange(0, 200, 2))
    assert len(even) == 7 and even.seed == loader.seed
    with pytest.raises(ValueError, match='not a field'):
        loader.filter('labels', bool)


def test_progressive_resizing_changes_output_size_between_epochs(images):
    path, _ = images
    decoder = RandomResizedCropRGBImageDecoder((32, 32))
    generated = []
    original = decoder.generate_code

    def counting_generate():
        generated.append(1)
        return original()

    decoder.generate_code = counting_generate
    loader = Loader(path, batch_size=50, num_workers=2, pipelines={'image': [decoder, ToTensor()]})
    sizes = []
    for size in (32, 48, 64):
        decoder.output_size = (size, size + 8)
        sizes.append({tuple(b[0].shape[1:3]) for b in loader})
    assert sizes == [{(32, 40)}, {(48, 56)}, {(64, 72)}]
    assert len(generated) == 1


class AddOne(Operation):
    """A custom operation written the FFCV 1.0 way."""

    def generate_code(self):
        parallel_range = Compiler.get_iterator()

        def add_one(images, dst):
            for i in parallel_range(images.shape[0]):
                dst[i] = images[i] + 1
            return dst

        return add_one

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


class Explode(Operation):
    is_parallel = True
    compiled = False

    def generate_code(self):
        def explode_in_worker(images, dst, indices):
            if 77 in indices:
                raise ZeroDivisionError("sample 77 is cursed")
            return images

        return explode_in_worker

    def declare_state_and_memory(self, previous_state):
        return previous_state, None


def test_custom_operation_runs_in_the_pipeline(images):
    path, _ = images
    plain = Loader(path, batch_size=20, num_workers=2, pipelines={
        'image': [RandomResizedCropRGBImageDecoder((24, 24))]}, seed=4)
    custom = Loader(path, batch_size=20, num_workers=2, pipelines={
        'image': [RandomResizedCropRGBImageDecoder((24, 24)), AddOne()]}, seed=4)
    for (a, _), (b, _) in zip(plain, custom):
        assert np.array_equal(a + np.uint8(1), b)
    assert custom.pipelines[0].steps[1].parallel  # it used Compiler.get_iterator()


def test_worker_exception_reaches_consumer_with_its_traceback(images):
    path, _ = images
    loader = Loader(path, batch_size=20, num_workers=2, pipelines={
        'image': [RandomResizedCropRGBImageDecoder((24, 24)), Explode()]})
    got = []
    with pytest.raises(ZeroDivisionError, match='cursed') as info:
        for batch in loader:
            got.append(batch)
    assert len(got) == 3  # batches before the one holding sample 77
    assert 'explode_in_worker' in {entry.name for entry in info.traceback}
    # the loader still works for the next epoch's batches before the bad one
    it = iter(loader)
    assert next(it)[1].shape == (20, 1)


class CountingIntDecoder(IntDecoder):
    """IntDecoder that counts the calls of its code and the samples they get."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def generate_code(self):
        decode = super().generate_code()
        calls = self.calls

        def counting(indices, destination, metadata, storage_state, seed=0):
            calls.append(len(indices))
            return decode(indices, destination, metadata, storage_state, seed)

        return counting


class PassOn(Operation):
    """A numpy operation of the worker threads that changes nothing."""
    is_parallel = True
    compiled = False

    def declare_state_and_memory(self, previous_state):
        return previous_state, None

    def generate_code(self):
        def pass_on(inputs, destination, indices, seed):
            return inputs
        return pass_on


def test_a_scalar_pipeline_runs_once_per_batch_and_an_image_pipeline_per_chunk(images):
    path, _ = images
    labels = CountingIntDecoder()
    loader = Loader(path, batch_size=32, num_workers=2, order=OrderOption.RANDOM, seed=4,
                    pipelines={'image': [RandomResizedCropRGBImageDecoder((16, 16))], 'label': [labels, ToTensor()]})
    by_name = {p.name: p for p in loader.pipelines}
    assert by_name['label'].whole_batch and not by_name['image'].whole_batch
    batches = [(np.asarray(x).copy(), y.clone()) for x, y in loader]
    assert len(batches) == len(loader) >= 2
    # one call per batch, with the whole batch, whatever the chunks of the image pipeline
    assert labels.calls == [32] * len(batches)
    # the same labels as a loader whose label pipeline runs in chunks (a transform after the
    # decoder keeps it out of whole_batch)
    chunked = Loader(path, batch_size=32, num_workers=2, order=OrderOption.RANDOM, seed=4,
                     pipelines={'image': [RandomResizedCropRGBImageDecoder((16, 16))],
                                'label': [IntDecoder(), PassOn(), ToTensor()]})
    assert not {p.name: p for p in chunked.pipelines}['label'].whole_batch
    again = [y.clone() for _, y in chunked]
    assert len(again) == len(batches)
    for (_, y), y2 in zip(batches, again):
        assert torch.equal(y, y2)
