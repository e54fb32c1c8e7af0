"""A decoder for every field type of the format."""
from .base import Decoder
from .basics import FloatDecoder, IntDecoder
from .bytes import BytesDecoder
from .ndarray import NDArrayDecoder
from .image import CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder
from .registry import default_decoder, register_default_decoder

__all__ = ['Decoder', 'IntDecoder', 'FloatDecoder', 'BytesDecoder', 'NDArrayDecoder',
           'SimpleRGBImageDecoder', 'RandomResizedCropRGBImageDecoder', 'CenterCropRGBImageDecoder',
           'default_decoder', 'register_default_decoder']
