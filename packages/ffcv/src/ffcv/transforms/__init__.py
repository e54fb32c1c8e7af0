"""FFCV 1.0's ``ffcv.transforms``, with the transforms this project adds (FFCV 1.1's and torchvision's)."""
from ffcv_ops import (ColorJitter, Convert, CutMix, Cutout, GaussianBlur, ImageMixup, LabelCutMix, LabelMixup,
                      MixupToOneHot, ModuleWrapper, NormalizeImage, Poison, RandAugment, RandomAffine,
                      RandomBrightness, RandomContrast, RandomCutout, RandomErasing, RandomGrayscale,
                      RandomHorizontalFlip, RandomResizedCrop, RandomRotation, RandomSaturation, RandomTranslate,
                      RandomVerticalFlip, ReplaceLabel, Solarization, Squeeze, ToDevice, ToTensor, ToTorchImage,
                      TrivialAugmentWide, View)

__all__ = ['ToTensor', 'ToDevice', 'ToTorchImage', 'NormalizeImage', 'Convert', 'Squeeze', 'View',
           'RandomResizedCrop', 'RandomHorizontalFlip', 'RandomTranslate', 'Cutout', 'ImageMixup', 'LabelMixup',
           'MixupToOneHot', 'Poison', 'ReplaceLabel', 'ModuleWrapper', 'RandomBrightness', 'RandomContrast',
           'RandomSaturation', 'RandomVerticalFlip', 'RandomCutout', 'RandomErasing', 'Solarization',
           'RandomGrayscale', 'ColorJitter', 'GaussianBlur', 'RandomAffine', 'RandomRotation', 'CutMix',
           'LabelCutMix', 'RandAugment', 'TrivialAugmentWide']
