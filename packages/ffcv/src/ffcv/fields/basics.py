"""FFCV 1.0's ``ffcv.fields.basics``: scalar fields and their decoders."""
from ffcv_format import FloatField, IntField
from ffcv_ops import BasicDecoder, FloatDecoder, IntDecoder

__all__ = ['IntField', 'FloatField', 'BasicDecoder', 'IntDecoder', 'FloatDecoder']
