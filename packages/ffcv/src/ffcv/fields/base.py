"""FFCV 1.0's ``ffcv.fields.base``."""
from ffcv_format import Field
from ffcv_format.fields.base import ARG_TYPE

__all__ = ['Field', 'ARG_TYPE']
