"""Which decoder a field gets when its pipeline does not start with one."""
from ffcv_format import BytesField, FloatField, ImageField, IntField, NDArrayField

from .basics import FloatDecoder, IntDecoder
from .bytes import BytesDecoder
from .image import SimpleRGBImageDecoder
from .ndarray import NDArrayDecoder

_DEFAULTS = [
    (IntField, IntDecoder),
    (FloatField, FloatDecoder),
    (BytesField, BytesDecoder),        # and JSONField
    (NDArrayField, NDArrayDecoder),    # and TorchTensorField
    (ImageField, SimpleRGBImageDecoder),  # and RGBImageField
]


def register_default_decoder(field_type, decoder_type):
    """Make ``decoder_type()`` the default decoder of fields of ``field_type``."""
    _DEFAULTS.insert(0, (field_type, decoder_type))


def default_decoder(field):
    """A new instance of the default decoder of ``field``.

    A field class may name its own with a ``get_decoder_class()`` method (FFCV 1.0's hook).
    """
    getter = getattr(field, 'get_decoder_class', None)
    if getter is not None:
        return getter()()
    for field_type, decoder_type in _DEFAULTS:
        if isinstance(field, field_type):
            return decoder_type()
    raise TypeError(f"no default decoder for a {type(field).__name__}; start its pipeline with "
                    f"a decoder, or register one with ffcv_ops.register_default_decoder")
