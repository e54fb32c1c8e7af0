"""Transforms: augmentations on numpy batches and the bridge to torch."""
from .affine import RandomAffine, RandomRotation
from .augment import Cutout, RandomHorizontalFlip, RandomTranslate
from .blur import GaussianBlur
from .color import RandomBrightness, RandomContrast, RandomSaturation
from .color_jitter import ColorJitter
from .crop import RandomResizedCrop
from .cutmix import CutMix, LabelCutMix
from .erasing import RandomCutout, RandomErasing
from .mixup import ImageMixup, LabelMixup, MixupToOneHot
from .module import ModuleWrapper
from .multiview import multi_view_pipelines
from .normalize import NormalizeImage
from .pixel import RandomGrayscale, Solarization
from .policies import RandAugment, TrivialAugmentWide
from .targeted import Poison, ReplaceLabel
from .torch_bridge import Convert, DeviceUnavailableError, Squeeze, ToDevice, ToTensor, ToTorchImage, View
from .vertical_flip import RandomVerticalFlip

__all__ = ['DeviceUnavailableError', 'RandomHorizontalFlip', 'RandomTranslate', 'Cutout', 'NormalizeImage',
           'ToTensor', 'ToDevice', 'ToTorchImage', 'Convert', 'View', 'Squeeze', 'ModuleWrapper', 'ImageMixup',
           'LabelMixup', 'MixupToOneHot', 'Poison', 'ReplaceLabel', 'RandomResizedCrop', 'RandomBrightness',
           'RandomContrast', 'RandomSaturation',
           # FFCV 1.1's
           'RandomVerticalFlip', 'RandomCutout', 'RandomErasing', 'Solarization',
           # torchvision's
           'RandomGrayscale', 'ColorJitter', 'GaussianBlur', 'RandomAffine', 'RandomRotation', 'CutMix',
           'LabelCutMix', 'RandAugment', 'TrivialAugmentWide',
           # self-supervised learning: several augmented views of one image
           'multi_view_pipelines']
