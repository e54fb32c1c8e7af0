"""Which decoder a field gets when its pipeline does not start with one.

The field answers (``field.get_decoder_class()``, FFCV 1.0's hook); this module registers
the decoders of the built-in fields with ffcv-format, where the fields look them up.
"""
from ffcv_format import BytesField, FloatField, ImageField, IntField, NDArrayField
from ffcv_format.fields import register_decoder_class

from .basics import FloatDecoder, IntDecoder
from .bytes import BytesDecoder
from .image import SimpleRGBImageDecoder
from .ndarray import NDArrayDecoder

for _field_type, _decoder_type in [
    (ImageField, SimpleRGBImageDecoder),  # and RGBImageField
    (NDArrayField, NDArrayDecoder),    # and TorchTensorField
    (BytesField, BytesDecoder),        # and JSONField
    (FloatField, FloatDecoder),
    (IntField, IntDecoder),
]:
    register_decoder_class(_field_type, _decoder_type)


def register_default_decoder(field_type, decoder_type):
    """Make ``decoder_type()`` the default decoder of fields of ``field_type``."""
    register_decoder_class(field_type, decoder_type)


def default_decoder(field):
    """A new instance of the default decoder of ``field`` (``field.get_decoder_class()()``)."""
    getter = getattr(field, 'get_decoder_class', None)
    if getter is None:
        raise TypeError(f"no default decoder for a {type(field).__name__}: it is not a field (it has no "
                        f"get_decoder_class()); start its pipeline with a decoder")
    return getter()()
