"""FFCV 1.0's ``ffcv.transforms.replace_label``."""
from ffcv_ops import ReplaceLabel

__all__ = ['ReplaceLabel']
