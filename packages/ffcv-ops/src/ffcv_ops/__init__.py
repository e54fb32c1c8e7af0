"""ffcv_ops: compiled decode and augmentation pipelines.

The Operation protocol (``Operation``, ``State``, ``AllocationQuery``, ``Compiler``), a
decoder for every field type, and the transforms of image training.
"""
from .__about__ import __version__
from .allocation_query import AllocationQuery
from .compiler import Compiler
from .decoders import (BasicDecoder, BytesDecoder, CenterCropRGBImageDecoder, Decoder, FloatDecoder, IntDecoder,
                       NDArrayDecoder, RandomResizedCropRGBImageDecoder, ResizedCropRGBImageDecoder,
                       SimpleRGBImageDecoder, default_decoder, register_default_decoder)
from .operation import Operation
from .pipeline import Pipeline, PipelineSpec
from .state import State
from .transforms import (Convert, Cutout, ImageMixup, LabelMixup, MixupToOneHot, ModuleWrapper,
                         NormalizeImage, Poison, RandomBrightness, RandomContrast, RandomHorizontalFlip,
                         RandomResizedCrop, RandomSaturation, RandomTranslate, ReplaceLabel, Squeeze,
                         DeviceUnavailableError, ToDevice, ToTensor, ToTorchImage, View)

__all__ = ['__version__', 'Operation', 'State', 'AllocationQuery', 'Compiler', 'Pipeline',
           'PipelineSpec', 'Decoder', 'BasicDecoder', 'IntDecoder', 'FloatDecoder', 'BytesDecoder', 'NDArrayDecoder',
           'SimpleRGBImageDecoder', 'ResizedCropRGBImageDecoder', 'RandomResizedCropRGBImageDecoder',
           'CenterCropRGBImageDecoder',
           'default_decoder', 'register_default_decoder', 'RandomHorizontalFlip', 'RandomTranslate', 'Cutout',
           'NormalizeImage', 'ToTensor', 'ToDevice', 'DeviceUnavailableError', 'ToTorchImage', 'Convert', 'View',
           'Squeeze',
           'ModuleWrapper', 'ImageMixup', 'LabelMixup', 'MixupToOneHot', 'Poison', 'ReplaceLabel',
           'RandomResizedCrop', 'RandomBrightness', 'RandomContrast', 'RandomSaturation']
