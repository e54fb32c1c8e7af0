"""FFCV 1.0's ``ffcv.transforms.module``."""
from ffcv_ops import ModuleWrapper

__all__ = ['ModuleWrapper']
