"""FFCV 1.0's ``ffcv.fields``: the field types."""
from ffcv_format import (BytesField, Field, FloatField, ImageField, IntField, JSONField, NDArrayField,
                         RGBImageField, TorchTensorField)

__all__ = ['Field', 'IntField', 'FloatField', 'BytesField', 'JSONField', 'NDArrayField',
           'TorchTensorField', 'RGBImageField', 'ImageField']
