"""The Loader with MultiViewRandomResizedCropRGBImageDecoder: (batch, views, height, width, 3) batches."""
import numpy as np
import pytest
import torch
from ffcv_format import IntField, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset
from ffcv_loader import Loader, OrderOption
from ffcv_ops import (ColorJitter, GaussianBlur, ImageMixup, IntDecoder, NormalizeImage, RandomGrayscale,
                     RandomHorizontalFlip, RandomResizedCropRGBImageDecoder, Solarization, ToTensor, ToTorchImage)
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


# ---------------------------------------------------------------- per-view augmentations

def plain_views(path, seed=1, views=3):
    """The decoder's views alone, by label (the same crops: later operations draw from seeds of
    their own, not the decoder's)."""
    return by_label(epoch(make_loader(path, views=views, seed=seed)))


def by_label(batches):
    images, labels = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    return {int(k): image.numpy() for k, image in zip(labels[:, 0], images)}


def test_a_transform_after_the_decoder_runs_on_every_view(jpeg_path):
    plain = plain_views(jpeg_path)
    solarized = by_label(epoch(make_loader(jpeg_path, image_ops=[Solarization(1.0, threshold=100)])))
    assert len(solarized) == len(plain) == 48
    for k, views in plain.items():
        expected = np.where(views >= 100, 255 - views, views)
        np.testing.assert_array_equal(solarized[k], expected)


def test_each_view_draws_its_own_augmentation(jpeg_path):
    plain = plain_views(jpeg_path)
    flipped = by_label(epoch(make_loader(jpeg_path, image_ops=[RandomHorizontalFlip(0.5)])))
    flips = np.zeros((48, 3), dtype=bool)
    for k, views in plain.items():
        for v in range(3):
            if np.array_equal(flipped[k][v], views[v]):
                continue
            np.testing.assert_array_equal(flipped[k][v], views[v][:, ::-1])
            flips[k, v] = True
    assert 0.25 < flips.mean() < 0.75, flips.mean()
    # views of one sample flipped differently: the draws are per view, not per sample
    assert (flips.any(axis=1) & ~flips.all(axis=1)).sum() >= 12


def test_per_view_pipelines_are_the_same_with_any_thread_count(jpeg_path):
    def run(workers):
        ops = [RandomHorizontalFlip(), ColorJitter(0.4, 0.4, 0.4, 0.1), GaussianBlur(3, p=0.5),
               RandomGrayscale(0.3)]
        pipelines = {'image': [MultiViewRandomResizedCropRGBImageDecoder((SIDE, SIDE), views=2), *ops],
                     'label': [IntDecoder(), ToTensor()]}
        return by_label(epoch(Loader(jpeg_path, batch_size=16, num_workers=workers, order=OrderOption.RANDOM,
                                     seed=3, pipelines=pipelines)))

    one, two = run(1), run(2)
    assert sorted(one) == sorted(two) == list(range(48))
    for k in one:
        np.testing.assert_array_equal(one[k], two[k])


@pytest.mark.parametrize('channels_last', [True, False])
def test_new_buffers_and_torch_images_keep_the_views_axis(jpeg_path, channels_last):
    plain = plain_views(jpeg_path, views=2)
    mean, std = np.array([120.0, 110.0, 100.0]), np.array([60.0, 50.0, 40.0])
    ops = [NormalizeImage(mean, std, np.float32), ToTensor(), ToTorchImage(channels_last=channels_last)]
    batches = epoch(make_loader(jpeg_path, views=2, image_ops=ops))
    assert len(batches) == 3
    assert all(tuple(images.shape) == (16, 2, 3, SIDE, SIDE) for images, _ in batches)
    for k, images in by_label(batches).items():
        expected = ((plain[k].astype(np.float64) - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)
        np.testing.assert_allclose(images, expected, rtol=1e-5, atol=1e-5)


def test_an_operation_of_the_whole_batch_is_refused_on_views(jpeg_path):
    with pytest.raises(ValueError, match=r"ImageMixup.*one view at a time"):
        make_loader(jpeg_path, image_ops=[ImageMixup(0.2, same_lambda=True)])
