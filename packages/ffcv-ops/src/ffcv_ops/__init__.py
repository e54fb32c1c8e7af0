"""ffcv_ops: compiled decode and augmentation pipelines.

The Operation protocol (``Operation``, ``State``, ``AllocationQuery``, ``Compiler``), a
decoder for every field type, and the transforms of image training.
"""
from .__about__ import __version__
from .allocation_query import AllocationQuery
from .compiler import Compiler
from .decoders import (BasicDecoder, BytesDecoder, CenterCropRGBImageDecoder, Decoder, FloatDecoder, IntDecoder,
                       MultiViewRandomResizedCropRGBImageDecoder, NDArrayDecoder, RandomResizedCropRGBImageDecoder, ResizedCropRGBImageDecoder,
                       SimpleRGBImageDecoder, default_decoder, register_default_decoder)
from .operation import Operation
from .pipeline import Pipeline, PipelineSpec
from .pipeline_data import PipelineDataError, load_pipelines, pipeline_from_data, pipelines_from_data
from .registry import available_ops, resolve_op
from .state import State
from .transforms import (ColorJitter, Convert, CutMix, Cutout, DeviceUnavailableError, GaussianBlur, ImageMixup,
                         LabelCutMix, LabelMixup, MixupToOneHot, ModuleWrapper, NormalizeImage, Poison,
                         RandAugment, RandomAffine, RandomBrightness, RandomContrast, RandomCutout, RandomErasing,
                         RandomGrayscale, RandomHorizontalFlip, RandomResizedCrop, RandomRotation, RandomSaturation,
                         RandomTranslate, RandomVerticalFlip, ReplaceLabel, Solarization, Squeeze, ToDevice,
                         ToTensor, ToTorchImage, TrivialAugmentWide, View, multi_view_pipelines)

__all__ = ['__version__', 'Operation', 'State', 'AllocationQuery', 'Compiler', 'Pipeline',
           'PipelineSpec', 'Decoder', 'BasicDecoder', 'IntDecoder', 'FloatDecoder', 'BytesDecoder', 'NDArrayDecoder',
           'SimpleRGBImageDecoder', 'ResizedCropRGBImageDecoder', 'RandomResizedCropRGBImageDecoder',
           'CenterCropRGBImageDecoder', 'MultiViewRandomResizedCropRGBImageDecoder',
           'default_decoder', 'register_default_decoder', 'RandomHorizontalFlip', 'RandomTranslate', 'Cutout',
           'NormalizeImage', 'ToTensor', 'ToDevice', 'DeviceUnavailableError', 'ToTorchImage', 'Convert', 'View',
           'Squeeze',
           'ModuleWrapper', 'ImageMixup', 'LabelMixup', 'MixupToOneHot', 'Poison', 'ReplaceLabel',
           'RandomResizedCrop', 'RandomBrightness', 'RandomContrast', 'RandomSaturation',
           'RandomVerticalFlip', 'RandomCutout', 'RandomErasing', 'Solarization', 'RandomGrayscale', 'ColorJitter',
           'GaussianBlur', 'RandomAffine', 'RandomRotation', 'CutMix', 'LabelCutMix', 'RandAugment',
           'TrivialAugmentWide', 'multi_view_pipelines',
           'resolve_op', 'available_ops', 'pipeline_from_data', 'pipelines_from_data', 'load_pipelines',
           'PipelineDataError']
