"""FFCV 1.0's ``ffcv.transforms.mixup``."""
from ffcv_ops import ImageMixup, LabelMixup, MixupToOneHot

__all__ = ['ImageMixup', 'LabelMixup', 'MixupToOneHot']
