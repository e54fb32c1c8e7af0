"""FFCV 1.0's ``ffcv.reader``."""
from ffcv_format import Reader

__all__ = ['Reader']
