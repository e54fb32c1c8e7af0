"""FFCV 1.0's ``ffcv.fields.json``."""
from ffcv_format import JSONField

__all__ = ['JSONField']
