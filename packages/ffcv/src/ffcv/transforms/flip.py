"""FFCV 1.0's ``ffcv.transforms.flip``."""
from ffcv_ops import RandomHorizontalFlip

__all__ = ['RandomHorizontalFlip']
