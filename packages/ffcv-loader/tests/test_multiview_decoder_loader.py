"""The Loader with MultiViewRandomResizedCropRGBImageDecoder: (batch, views, height, width, 3) batches."""
import numpy as np
import pytest
import torch
from ffcv_format import IntField, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset
from ffcv_loader import Loader, OrderOption
from ffcv_ops import IntDecoder, RandomResizedCropRGBImageDecoder, ToTensor
from ffcv_ops.decoders.multiview import MultiViewRandomResizedCropRGBImageDecoder

SIDE = 24


@pytest.fixture(scope='module')
def jpeg_path(tmp_path_factory):
    rng = np.random.default_rng(11)
    samples = [(photo_like_image(rng, int(rng.integers(32, 80)), int(rng.integers(32, 80)), 3), k)
               for k in range(48)]
    path = tmp_path_factory.mktemp('multiview') / 'jpeg.beton'
    fields = {'image': RGBImageField(write_mode='jpg', jpeg_quality=90), 'label': IntField()}
    write_dataset(path, fields, samples)
    return str(path)


def make_loader(path, views=3, seed=1, image_ops=()):
    pipelines = {'image': [MultiViewRandomResizedCropRGBImageDecoder((SIDE, SIDE), views=views), *image_ops],
                 'label': [IntDecoder(), ToTensor()]}
    return Loader(path, batch_size=16, num_workers=2, order=OrderOption.RANDOM, seed=seed,
                  pipelines=pipelines)


def epoch(loader):
    return [(torch.as_tensor(np.asarray(images)).clone(), torch.as_tensor(np.asarray(labels)).clone())
            for images, labels in loader]


def test_batches_have_a_views_axis(jpeg_path):
    loader = make_loader(jpeg_path, image_ops=[ToTensor()])
    batches = epoch(loader)
    assert len(batches) == 3
    for images, labels in batches:
        assert tuple(images.shape) == (16, 3, SIDE, SIDE, 3) and images.dtype == torch.uint8
        assert tuple(labels.shape) == (16, 1)
        for a, b in [(0, 1), (0, 2), (1, 2)]:
            assert (images[:, a] != images[:, b]).flatten(1).any(dim=1).all()
        nchw = [images[:, v].permute(0, 3, 1, 2) for v in range(images.shape[1])]   # the documented split
        assert all(tuple(x.shape) == (16, 3, SIDE, SIDE) for x in nchw)


def test_numpy_batches_and_determinism(jpeg_path):
    first, again = epoch(make_loader(jpeg_path)), epoch(make_loader(jpeg_path))
    assert tuple(first[0][0].shape) == (16, 3, SIDE, SIDE, 3)
    for (images, labels), (images2, labels2) in zip(first, again):
        assert torch.equal(labels, labels2) and torch.equal(images, images2)
    loader = make_loader(jpeg_path)
    epoch0, epoch1 = epoch(loader), epoch(loader)
    by_label = []
    for batches in (epoch0, epoch1):
        images, labels = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        by_label.append({int(k): image for k, image in zip(labels[:, 0], images)})
    assert sum(not torch.equal(by_label[0][k], by_label[1][k]) for k in by_label[0]) > 40


def test_one_view_matches_the_random_resized_crop_decoder(jpeg_path):
    def images(decoder):
        loader = Loader(jpeg_path, batch_size=16, num_workers=2, seed=5,
                        pipelines={'image': [decoder], 'label': [IntDecoder()]})
        return np.concatenate([np.asarray(b[0]).copy() for b in loader])

    multi = images(MultiViewRandomResizedCropRGBImageDecoder((SIDE, SIDE), views=1))
    single = images(RandomResizedCropRGBImageDecoder((SIDE, SIDE), scaled_decoding=False))
    np.testing.assert_array_equal(multi[:, 0], single)
