"""FFCV 1.0's ``ffcv.transforms``."""
from ffcv_ops import (Convert, Cutout, ImageMixup, LabelMixup, MixupToOneHot, ModuleWrapper, NormalizeImage, Poison,
                      RandomBrightness, RandomContrast, RandomHorizontalFlip, RandomResizedCrop, RandomSaturation,
                      RandomTranslate, ReplaceLabel, Squeeze, ToDevice, ToTensor, ToTorchImage, View)

__all__ = ['ToTensor', 'ToDevice', 'ToTorchImage', 'NormalizeImage', 'Convert', 'Squeeze', 'View',
           'RandomResizedCrop', 'RandomHorizontalFlip', 'RandomTranslate', 'Cutout', 'ImageMixup', 'LabelMixup',
           'MixupToOneHot', 'Poison', 'ReplaceLabel', 'ModuleWrapper', 'RandomBrightness', 'RandomContrast',
           'RandomSaturation']
