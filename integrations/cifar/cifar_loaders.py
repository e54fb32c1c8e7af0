"""The CIFAR-10 recipe's loaders: ffcv pipelines for training (flip, translate, Cutout) and
for evaluation (the images as they are), both ending in normalised NCHW float tensors on the
training device."""
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcv.loader import Loader, OrderOption
from ffcv.transforms import (Cutout, NormalizeImage, RandomHorizontalFlip, RandomTranslate, Squeeze, ToDevice,
                             ToTensor, ToTorchImage)


def label_pipeline(device: torch.device) -> list:
    """``IntField`` labels as a ``(batch,)`` int64 tensor on ``device``."""
    return [IntDecoder(), ToTensor(), ToDevice(device), Squeeze()]


def image_pipeline(config: Mapping[str, Any], device: torch.device, train: bool) -> list:
    """Decoded 32x32 images, augmented when ``train``, as normalised float32 NCHW tensors
    on ``device`` (channels-last in memory when ``config['channels_last']``)."""
    mean, std = np.array(config['mean']), np.array(config['std'])
    fill = tuple(round(m) for m in mean)   # what comes in from outside: the mean colour
    ops = [SimpleRGBImageDecoder()]
    if train:
        ops += [RandomHorizontalFlip(),
                RandomTranslate(padding=int(config['translate_padding']), fill=fill),
                Cutout(int(config['cutout_size']), fill)]
    ops += [ToTensor(), ToDevice(device), ToTorchImage(channels_last=bool(config['channels_last'])),
            NormalizeImage(mean, std, np.float32)]
    return ops


def make_loader(config: Mapping[str, Any], path: str, device: torch.device, train: bool,
                distributed: bool = False) -> Loader:
    """A loader of ``path``: shuffled and augmented when ``train``, in file order otherwise
    (and then keeping the last, partial batch, so that every test image counts)."""
    return Loader(path, batch_size=int(config['batch_size']), num_workers=int(config['num_workers']),
                  order=OrderOption.RANDOM if train else OrderOption.SEQUENTIAL,
                  drop_last=train, seed=int(config['seed']), distributed=distributed,
                  pipelines={'image': image_pipeline(config, device, train), 'label': label_pipeline(device)})
