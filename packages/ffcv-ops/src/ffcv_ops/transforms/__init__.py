"""Transforms: augmentations on numpy batches and the bridge to torch."""
from .augment import Cutout, RandomHorizontalFlip, RandomTranslate
from .color import RandomBrightness, RandomContrast, RandomSaturation
from .crop import RandomResizedCrop
from .mixup import ImageMixup, LabelMixup, MixupToOneHot
from .module import ModuleWrapper
from .normalize import NormalizeImage
from .targeted import Poison, ReplaceLabel
from .torch_bridge import Convert, DeviceUnavailableError, Squeeze, ToDevice, ToTensor, ToTorchImage, View

__all__ = ['DeviceUnavailableError', 'RandomHorizontalFlip', 'RandomTranslate', 'Cutout', 'NormalizeImage', 'ToTensor', 'ToDevice',
           'ToTorchImage', 'Convert', 'View', 'Squeeze', 'ModuleWrapper', 'ImageMixup', 'LabelMixup',
           'MixupToOneHot', 'Poison', 'ReplaceLabel', 'RandomResizedCrop', 'RandomBrightness',
           'RandomContrast', 'RandomSaturation']
