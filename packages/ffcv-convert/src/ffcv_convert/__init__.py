"""ffcv_convert: datasets of any shape, anywhere, into `.beton` files.

>>> from ffcv_convert import convert
>>> convert('data/train', 'train.beton', image_options={'max_resolution': 256})   # doctest: +SKIP

Sources (image folders, CSV/Parquet manifests, WebDataset shards on any fsspec
filesystem; map-style datasets; iterables), resumable conversion, and ``concat``,
``subset``, ``append`` of existing files. The ``ffcv`` command line's ``convert``,
``inspect``, ``verify``, ``concat``, ``subset`` and ``append`` live in
:mod:`ffcv_convert.cli`.
"""
from .__about__ import __version__
from .combine import append, concat, parse_indices, subset
from .conversion import ConversionResult, convert, work_dir_for
from .errors import BadSampleError, ConversionError, FieldMismatchError
from .fieldspec import FieldSpec, parse_field_specs
from .images import EncodedImage, SourceImageField, decode_image, jpeg_info
from .sources import (
                      ImageFolder,
                      IndexedDataset,
                      IndexedSource,
                      IterableSource,
                      Manifest,
                      Source,
                      StreamSource,
                      WebDataset,
                      expand_braces,
                      open_source,
)

__all__ = ['__version__', 'convert', 'ConversionResult', 'work_dir_for', 'concat', 'subset', 'append',
           'parse_indices', 'ConversionError', 'BadSampleError', 'FieldMismatchError', 'FieldSpec',
           'parse_field_specs', 'EncodedImage', 'SourceImageField', 'decode_image', 'jpeg_info',
           'Source', 'IndexedSource', 'StreamSource', 'ImageFolder', 'Manifest', 'WebDataset',
           'IndexedDataset', 'IterableSource', 'open_source', 'expand_braces']
