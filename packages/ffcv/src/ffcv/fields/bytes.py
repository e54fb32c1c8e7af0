"""FFCV 1.0's ``ffcv.fields.bytes``."""
from ffcv_format import BytesField
from ffcv_ops import BytesDecoder

__all__ = ['BytesField', 'BytesDecoder']
