"""FFCV 1.0's ``ffcv.fields.base``."""
from ffcv_format import Field

__all__ = ['Field']
