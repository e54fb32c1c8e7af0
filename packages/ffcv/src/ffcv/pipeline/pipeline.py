"""FFCV 1.0's ``ffcv.pipeline.pipeline``."""
from ffcv_ops import Pipeline

__all__ = ['Pipeline']
