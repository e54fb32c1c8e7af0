"""FFCV 1.0's ``ffcv.pipeline.state``."""
from ffcv_ops import State

__all__ = ['State']
