"""FFCV 1.0's quickstart, written against FFCV 1.0's import paths, runs unchanged."""
from dataclasses import replace

import numpy as np
import torch

from ffcv_format.testing import photo_like_image


class ToyImageDataset:
    """A map-style dataset of (HxWx3 uint8 image, label), like a torchvision dataset."""

    def __init__(self, n, seed=0):
        rng = np.random.default_rng(seed)
        self.items = [(photo_like_image(rng, int(rng.integers(200, 400)), int(rng.integers(200, 400))), i % 10)
                      for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_ffcv_10_quickstart(tmp_path):
    from ffcv.writer import DatasetWriter
    from ffcv.fields import RGBImageField, IntField

    ds = ToyImageDataset(120)
    write_path = str(tmp_path / 'ds.beton')
    writer = DatasetWriter(write_path, {
        'image': RGBImageField(max_resolution=256, jpeg_quality=90),
        'label': IntField(),
    })
    writer.from_indexed_dataset(ds)

    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import ToTensor, ToTorchImage, Cutout
    from ffcv.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
    from ffcv.fields.rgb_image import RandomResizedCropRGBImageDecoder as FromRGBModule

    assert FromRGBModule is RandomResizedCropRGBImageDecoder
    bs, n = 32, 2
    decoder = RandomResizedCropRGBImageDecoder((224, 224))
    image_pipeline = [decoder, Cutout(), ToTensor(), ToTorchImage()]
    label_pipeline = [IntDecoder(), ToTensor()]
    loader = Loader(write_path, batch_size=bs, num_workers=n, order=OrderOption.RANDOM,
                    pipelines={'image': image_pipeline, 'label': label_pipeline})

    for epoch in range(2):
        labels = []
        for ims, labs in loader:
            assert ims.shape == (bs, 3, 224, 224) and ims.dtype == torch.uint8
            assert labs.shape == (bs, 1) and labs.dtype == torch.int64
            # Cutout() blacked out a square (half the side: 112 px, clipped) in every image
            assert bool(((ims == 0).all(dim=1).sum(dim=(1, 2)) >= 56 * 56).all())
            labels.append(labs[:, 0].clone())
        labels = torch.cat(labels)
        assert len(labels) == 96                         # drop_last: 3 full batches of 120 samples
        assert set(labels.tolist()) <= set(range(10))
        counts = torch.bincount(labels, minlength=10)
        assert int(counts.max()) <= 12                   # each label is on 12 samples: no repeats


def test_custom_operation_written_the_ffcv_10_way(tmp_path):
    from ffcv import DatasetWriter, Loader
    from ffcv.fields import NDArrayField
    from ffcv.fields.decoders import NDArrayDecoder
    from ffcv.pipeline.allocation_query import AllocationQuery
    from ffcv.pipeline.compiler import Compiler
    from ffcv.pipeline.operation import Operation
    from ffcv.pipeline.state import State
    from ffcv.transforms import ToTensor

    class Scale(Operation):
        """Multiplies by a factor into a buffer of another dtype."""

        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def generate_code(self):
            parallel_range = Compiler.get_iterator()
            factor = self.factor

            def scale(inputs, dst):
                for i in parallel_range(inputs.shape[0]):
                    dst[i] = inputs[i] * factor
                return dst

            return scale

        def declare_state_and_memory(self, previous_state: State):
            new_state = replace(previous_state, dtype=np.dtype('float64'))
            return new_state, AllocationQuery(previous_state.shape, np.dtype('float64'))

    data = [(np.arange(12, dtype=np.int32).reshape(3, 4) + i,) for i in range(100)]
    path = str(tmp_path / 'arrays.beton')
    DatasetWriter(path, {'x': NDArrayField(np.dtype('int32'), (3, 4))}).from_indexed_dataset(data)
    loader = Loader(path, batch_size=40, num_workers=2, drop_last=False,
                    pipelines={'x': [NDArrayDecoder(), Scale(0.5), ToTensor()]})
    batches = [b[0].clone() for b in loader]
    got = torch.cat(batches)
    expected = torch.from_numpy(np.stack([d[0] for d in data]) * 0.5)
    assert got.dtype == torch.float64 and torch.equal(got, expected)
    assert loader.pipelines[0].steps[1].parallel and loader.pipelines[0].steps[1].compiled
