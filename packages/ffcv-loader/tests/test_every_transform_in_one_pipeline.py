"""Every image transform of ffcv-ops in one pipeline, through the Loader, on a JPEG dataset."""
import numpy as np
import torch
from ffcv_format import IntField, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset
from ffcv_loader import Loader, OrderOption
from ffcv_ops import (ColorJitter, CutMix, Cutout, GaussianBlur, IntDecoder, LabelCutMix, NormalizeImage,
                      RandAugment, RandomAffine, RandomBrightness, RandomContrast, RandomCutout, RandomErasing,
                      RandomGrayscale, RandomHorizontalFlip, RandomResizedCropRGBImageDecoder, RandomRotation,
                      RandomSaturation, RandomTranslate, RandomVerticalFlip, Solarization, ToTensor, ToTorchImage,
                      TrivialAugmentWide)
from ffcv_ops.decoders.multiview import MultiViewRandomResizedCropRGBImageDecoder

N, SIDE, BATCH = 96, 48, 16


def jpeg_file(path):
    rng = np.random.default_rng(0)
    samples = [(photo_like_image(rng, int(rng.integers(40, 120)), int(rng.integers(40, 120))), i)
               for i in range(N)]
    write_dataset(str(path), {'image': RGBImageField(write_mode='jpg', jpeg_quality=90), 'label': IntField()},
                  samples)
    return str(path)


def every_transform():
    return [RandomResizedCropRGBImageDecoder((SIDE, SIDE)), RandomHorizontalFlip(), RandomVerticalFlip(),
            RandomTranslate(padding=4), Cutout(8), RandomCutout(0.5, 8), RandomErasing(0.5),
            Solarization(0.5), RandomGrayscale(0.2), ColorJitter(0.4, 0.4, 0.4, 0.1),
            RandomBrightness(0.5, 0.2), RandomContrast(0.5, 0.2), RandomSaturation(0.5, 0.2),
            GaussianBlur(5, p=0.5), RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5),
            RandomRotation(15), RandAugment(), TrivialAugmentWide(), CutMix(1.0),
            ToTensor(), ToTorchImage(), NormalizeImage(np.full(3, 127.0), np.full(3, 64.0), np.float32)]


def load(path, workers, augment=True):
    image = every_transform() if augment else [RandomResizedCropRGBImageDecoder((SIDE, SIDE)), ToTensor(),
                                                ToTorchImage(), NormalizeImage(np.full(3, 127.0),
                                                                               np.full(3, 64.0), np.float32)]
    label = [IntDecoder(), LabelCutMix(1.0, image_size=SIDE)] if augment else [IntDecoder()]
    loader = Loader(path, batch_size=BATCH, num_workers=workers, order=OrderOption.RANDOM, seed=5,
                    pipelines={'image': image, 'label': label + [ToTensor()]})
    return [(images.clone(), labels.clone()) for images, labels in loader]


def test_every_transform_runs_in_one_pipeline_on_jpegs(tmp_path):
    path = jpeg_file(tmp_path / 'photos.beton')
    batches = load(path, workers=2)
    assert len(batches) == N // BATCH
    for images, labels in batches:
        assert images.shape == (BATCH, 3, SIDE, SIDE) and images.dtype == torch.float32
        assert torch.isfinite(images).all()
        assert labels.shape == (BATCH, 3)      # label, partner's label, share of the image kept
        assert ((labels[:, 2] >= 0) & (labels[:, 2] <= 1)).all()
    seen = torch.cat([labels[:, 0] for _, labels in batches]).long()
    assert sorted(seen.tolist()) == list(range(N))   # every sample once, as itself

    # the same seed gives the same batches whatever the thread count
    for (a, la), (b, lb) in zip(batches, load(path, workers=1)):
        assert torch.equal(a, b) and torch.equal(la, lb)

    # and the augmentations did something: the same crops without them differ
    plain = load(path, workers=2, augment=False)
    changed = sum(not torch.equal(a, p) for (a, _), (p, _) in zip(batches, plain))
    assert changed == len(batches)


def per_view_transforms():
    """Every transform that works on each sample on its own (CutMix pairs the samples of a
    batch, so it is not among them), after a two-view decoder."""
    return [MultiViewRandomResizedCropRGBImageDecoder((SIDE, SIDE), views=2), RandomHorizontalFlip(),
            RandomVerticalFlip(), RandomTranslate(padding=4), Cutout(8), RandomCutout(0.5, 8), RandomErasing(0.5),
            Solarization(0.5), RandomGrayscale(0.2), ColorJitter(0.4, 0.4, 0.4, 0.1), RandomBrightness(0.5, 0.2),
            RandomContrast(0.5, 0.2), RandomSaturation(0.5, 0.2), GaussianBlur(5, p=0.5),
            RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5), RandomRotation(15), RandAugment(),
            TrivialAugmentWide(), NormalizeImage(np.full(3, 127.0), np.full(3, 64.0), np.float32), ToTensor(),
            ToTorchImage()]


def test_every_per_sample_transform_runs_on_each_view_of_a_multi_view_decoder(tmp_path):
    path = jpeg_file(tmp_path / 'photos.beton')

    def load_views(workers):
        loader = Loader(path, batch_size=BATCH, num_workers=workers, order=OrderOption.RANDOM, seed=5,
                        pipelines={'image': per_view_transforms(), 'label': [IntDecoder(), ToTensor()]})
        return [(images.clone(), labels.clone()) for images, labels in loader]

    batches = load_views(2)
    assert len(batches) == N // BATCH
    for images, labels in batches:
        assert images.shape == (BATCH, 2, 3, SIDE, SIDE) and images.dtype == torch.float32
        assert torch.isfinite(images).all()
        # the two views of a sample differ (own crop, own augmentations)
        assert (images[:, 0] != images[:, 1]).flatten(1).any(dim=1).all()
    assert sorted(torch.cat([labels[:, 0] for _, labels in batches]).tolist()) == list(range(N))
    for (a, la), (b, lb) in zip(batches, load_views(1)):
        assert torch.equal(a, b) and torch.equal(la, lb)
