"""FFCV 1.0's ``ffcv.fields.rgb_image``: the image field, its decoders and helpers."""
from ffcv_format import ImageField, RGBImageField
from ffcv_format.fields.image import MODE_JPEG, MODE_RAW, encode_jpeg, resize_image
from ffcv_ops import (CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder, ResizedCropRGBImageDecoder,
                      SimpleRGBImageDecoder)
from ffcv_ops.adapter import get_center_crop, get_random_crop
from ffcv_ops.decoders.image import DEFAULT_CROP_RATIO

#: the stored modes of an image (metadata ``mode``)
IMAGE_MODES = {'jpg': MODE_JPEG, 'raw': MODE_RAW}


def resizer(image, target_resolution):
    """``image`` with its longer side shrunk to ``target_resolution`` (None: unchanged)."""
    return resize_image(image, target_resolution)


__all__ = ['RGBImageField', 'ImageField', 'SimpleRGBImageDecoder', 'ResizedCropRGBImageDecoder',
           'RandomResizedCropRGBImageDecoder', 'CenterCropRGBImageDecoder', 'DEFAULT_CROP_RATIO', 'IMAGE_MODES',
           'encode_jpeg', 'resizer', 'get_random_crop', 'get_center_crop']
