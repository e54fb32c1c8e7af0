"""The demo's ffcv loaders: JPEG decoding, a small random shift for training, torch batches.

Digits are not mirror-symmetric (a flipped 2 is no digit), so the only augmentation is
:class:`~ffcv.transforms.RandomTranslate`: a shift of a few pixels each way, about half a
pixel of the original 8x8 image, with black coming in from the border.
"""
from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcv.loader import Loader, OrderOption
from ffcv.transforms import RandomTranslate, Squeeze, ToTensor, ToTorchImage


def translate_padding(image_size: int) -> int:
    """The largest shift of the training augmentation, in pixels: 1/16 of the image side."""
    return max(1, image_size // 16)


def digits_loader(path: str, *, batch_size: int, workers: int, seed: int, shift: int | None) -> Loader:
    """A loader of ``(N x 3 x H x W uint8 images, N int64 labels)`` batches from ``path``.

    With ``shift`` (training): random order, every image shifted by up to ``shift`` pixels
    vertically and horizontally (the draws come from ``seed`` and the epoch), full batches
    only. With ``shift=None`` (evaluation): the file's order, images as stored, every sample.

    >>> loader = digits_loader('train.beton', batch_size=64, workers=2, seed=0, shift=2)  # doctest: +SKIP
    >>> images, labels = next(iter(loader))                                               # doctest: +SKIP
    """
    train = shift is not None
    image = [SimpleRGBImageDecoder()] + ([RandomTranslate(padding=shift)] if train else [])
    return Loader(path, batch_size=batch_size, num_workers=workers, seed=seed,
                  order=OrderOption.RANDOM if train else OrderOption.SEQUENTIAL, drop_last=train,
                  pipelines={'image': image + [ToTensor(), ToTorchImage()],
                             'label': [IntDecoder(), ToTensor(), Squeeze(1)]})
