"""FFCV 1.0's ``ffcv.fields``: the field types.

Importing it also loads the decoders (ffcv-ops), so that ``field.get_decoder_class()``
answers as in FFCV 1.0.
"""
import ffcv_ops  # noqa: F401  (registers the built-in fields' decoders)
from ffcv_format import (BytesField, Field, FloatField, ImageField, IntField, JSONField, NDArrayField,
                         RGBImageField, TorchTensorField)

__all__ = ['Field', 'IntField', 'FloatField', 'BytesField', 'JSONField', 'NDArrayField',
           'TorchTensorField', 'RGBImageField', 'ImageField']
