"""FFCV 1.0's ``ffcv.transforms.normalize``."""
from ffcv_ops import NormalizeImage

__all__ = ['NormalizeImage']
