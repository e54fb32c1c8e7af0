"""A decoder for every field type of the format."""
from .base import Decoder
from .basics import BasicDecoder, FloatDecoder, IntDecoder
from .bytes import BytesDecoder
from .ndarray import NDArrayDecoder
from .image import (CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder, ResizedCropRGBImageDecoder,
                    SimpleRGBImageDecoder)
from .multiview import MultiViewRandomResizedCropRGBImageDecoder
from .registry import default_decoder, register_default_decoder

__all__ = ['Decoder', 'BasicDecoder', 'IntDecoder', 'FloatDecoder', 'BytesDecoder', 'NDArrayDecoder',
           'SimpleRGBImageDecoder', 'ResizedCropRGBImageDecoder', 'RandomResizedCropRGBImageDecoder',
           'CenterCropRGBImageDecoder', 'MultiViewRandomResizedCropRGBImageDecoder',
           'default_decoder', 'register_default_decoder']
