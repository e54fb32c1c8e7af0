"""FFCV 1.0's ``ffcv.fields.decoders``: a decoder per field type."""
from ffcv_ops import (BytesDecoder, CenterCropRGBImageDecoder, FloatDecoder, IntDecoder, NDArrayDecoder,
                      RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder)

__all__ = ['IntDecoder', 'FloatDecoder', 'BytesDecoder', 'NDArrayDecoder', 'SimpleRGBImageDecoder',
           'RandomResizedCropRGBImageDecoder', 'CenterCropRGBImageDecoder']
