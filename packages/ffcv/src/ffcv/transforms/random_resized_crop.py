"""FFCV 1.0's ``ffcv.transforms.random_resized_crop``."""
from ffcv_ops import RandomResizedCrop

__all__ = ['RandomResizedCrop']
