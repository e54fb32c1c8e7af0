"""ffcv_format: the `.beton` file format — fields, DatasetWriter, Reader, verify."""
from .__about__ import __version__
from .errors import EncodeError, FormatError, OutputExistsError
from .fields import (BytesField, Field, FloatField, ImageField, IntField, JSONField, NDArrayField,
                     RGBImageField, TorchTensorField, TYPE_ID_HANDLER)
from .writer import DatasetWriter

__all__ = ['__version__', 'DatasetWriter', 'Field', 'FloatField', 'IntField', 'BytesField',
           'JSONField', 'NDArrayField', 'TorchTensorField', 'RGBImageField', 'ImageField',
           'TYPE_ID_HANDLER', 'EncodeError', 'FormatError', 'OutputExistsError']
from .reader import Reader
from .verify import verify

__all__ += ['Reader', 'verify']
