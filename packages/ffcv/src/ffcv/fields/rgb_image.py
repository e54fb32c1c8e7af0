"""FFCV 1.0's ``ffcv.fields.rgb_image``: the image field and its decoders."""
from ffcv_format import ImageField, RGBImageField
from ffcv_ops import CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder
from ffcv_ops.decoders.image import DEFAULT_CROP_RATIO

__all__ = ['RGBImageField', 'ImageField', 'SimpleRGBImageDecoder', 'RandomResizedCropRGBImageDecoder',
           'CenterCropRGBImageDecoder', 'DEFAULT_CROP_RATIO']
