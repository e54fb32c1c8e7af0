"""FFCV 1.0's ``ffcv.transforms.poisoning``."""
from ffcv_ops import Poison

__all__ = ['Poison']
