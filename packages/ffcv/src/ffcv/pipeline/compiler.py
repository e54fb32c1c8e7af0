"""FFCV 1.0's ``ffcv.pipeline.compiler``."""
from ffcv_ops import Compiler

__all__ = ['Compiler']
