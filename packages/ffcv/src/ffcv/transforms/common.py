"""FFCV 1.0's ``ffcv.transforms.common``."""
from ffcv_ops import Squeeze

__all__ = ['Squeeze']
