"""Transforms: augmentations on numpy batches and the bridge to torch."""
from .augment import Cutout, RandomHorizontalFlip, RandomTranslate
from .normalize import NormalizeImage
from .torch_bridge import Convert, Squeeze, ToDevice, ToTensor, ToTorchImage, View

__all__ = ['RandomHorizontalFlip', 'RandomTranslate', 'Cutout', 'NormalizeImage', 'ToTensor', 'ToDevice',
           'ToTorchImage', 'Convert', 'View', 'Squeeze']
