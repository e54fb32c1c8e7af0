"""FFCV 1.0's ``ffcv.transforms.translate``."""
from ffcv_ops import RandomTranslate

__all__ = ['RandomTranslate']
