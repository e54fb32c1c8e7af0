"""FFCV 1.0's ``ffcv.transforms.color_jitter``."""
from ffcv_ops import RandomBrightness, RandomContrast, RandomSaturation

__all__ = ['RandomBrightness', 'RandomContrast', 'RandomSaturation']
