"""FFCV 1.0's ``ffcv.transforms``."""
from ffcv_ops import (Convert, Cutout, NormalizeImage, RandomHorizontalFlip, RandomTranslate, Squeeze, ToDevice,
                      ToTensor, ToTorchImage, View)

__all__ = ['ToTensor', 'ToDevice', 'ToTorchImage', 'NormalizeImage', 'Convert', 'View', 'Squeeze',
           'RandomHorizontalFlip', 'RandomTranslate', 'Cutout']
