"""FFCV 1.0's ``ffcv.writer``."""
from ffcv_format import DatasetWriter

__all__ = ['DatasetWriter']
