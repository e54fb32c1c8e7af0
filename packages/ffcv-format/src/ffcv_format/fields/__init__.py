"""Field types, and the table from a type id to its field class."""
from .base import Field, current_sample_id, register_decoder_class
from .basics import FloatField, IntField
from .bytes import BytesField, JSONField
from .image import ImageField, RGBImageField
from .ndarray import NDArrayField, TorchTensorField

#: type id stored in a file -> the field class that reads it
TYPE_ID_HANDLER = {
    0: FloatField,
    1: IntField,
    2: RGBImageField,
    3: BytesField,
    4: NDArrayField,
    5: JSONField,
    6: TorchTensorField,
    7: ImageField,
}

__all__ = ['Field', 'FloatField', 'IntField', 'BytesField', 'JSONField', 'NDArrayField',
           'TorchTensorField', 'RGBImageField', 'ImageField', 'TYPE_ID_HANDLER',
           'current_sample_id', 'register_decoder_class']
