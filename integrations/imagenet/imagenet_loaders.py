"""The ImageNet recipe's loaders: random resized crops and flips for training (the crop size
set per epoch for progressive resizing), centre crops for validation."""
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ffcv.fields.decoders import CenterCropRGBImageDecoder, IntDecoder, RandomResizedCropRGBImageDecoder
from ffcv.loader import Loader, OrderOption
from ffcv.reader import Reader
from ffcv.transforms import NormalizeImage, RandomHorizontalFlip, Squeeze, ToDevice, ToTensor, ToTorchImage

# ImageNet's per-channel statistics, 0-255
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255


def _label_pipeline(device: torch.device) -> list:
    return [IntDecoder(), ToTensor(), ToDevice(device), Squeeze()]


def _to_normalised_batch(device: torch.device, channels_last: bool, dtype: np.dtype) -> list:
    return [ToTensor(), ToDevice(device), ToTorchImage(channels_last=channels_last),
            NormalizeImage(IMAGENET_MEAN, IMAGENET_STD, dtype)]


def train_loader(config: Mapping[str, Any], device: torch.device, resolution: int, distributed: bool,
                 image_dtype: np.dtype = np.float32) -> tuple[Loader, RandomResizedCropRGBImageDecoder]:
    """The training loader and its crop decoder, whose ``output_size`` the training loop
    changes between epochs (the loader resizes its buffers at the next epoch; nothing is
    recompiled). Images come normalised as ``image_dtype`` (float16 under fp16 autocast
    halves the copy to the GPU)."""
    decoder = RandomResizedCropRGBImageDecoder((resolution, resolution))
    loader = Loader(config['train_dataset'], batch_size=int(config['batch_size']),
                    num_workers=int(config['num_workers']), os_cache=bool(config['os_cache']),
                    order=OrderOption.RANDOM if config['os_cache'] else OrderOption.QUASI_RANDOM,
                    distributed=distributed, seed=int(config['seed']), drop_last=True,
                    pipelines={'image': [decoder, RandomHorizontalFlip(),
                                         *_to_normalised_batch(device, bool(config['channels_last']),
                                                               image_dtype)],
                               'label': _label_pipeline(device)})
    return loader, decoder


def val_loader(config: Mapping[str, Any], device: torch.device, rank: int = 0, world_size: int = 1,
               image_dtype: np.dtype = np.float32) -> Loader:
    """The validation loader of this rank: every ``world_size``-th sample from ``rank`` on, so
    that the ranks together see each validation image exactly once (no padding)."""
    size = int(config['val_res'])
    num_samples = Reader(config['val_dataset']).num_samples
    return Loader(config['val_dataset'], batch_size=int(config['val_batch_size']),
                  num_workers=int(config['num_workers']), os_cache=bool(config['os_cache']),
                  order=OrderOption.SEQUENTIAL, drop_last=False, seed=int(config['seed']),
                  indices=np.arange(rank, num_samples, world_size),
                  pipelines={'image': [CenterCropRGBImageDecoder((size, size),
                                                                 ratio=float(config['val_crop_ratio'])),
                                       *_to_normalised_batch(device, bool(config['channels_last']),
                                                             image_dtype)],
                             'label': _label_pipeline(device)})
