"""FFCV 1.0's ``ffcv.transforms.cutout``."""
from ffcv_ops import Cutout

__all__ = ['Cutout']
