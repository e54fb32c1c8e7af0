"""ffcv: fast data loading for training computer vision models.

The meta-package: FFCV 1.0's import paths (``ffcv.fields``, ``ffcv.loader``,
``ffcv.transforms``, ``ffcv.pipeline``, ...) re-exporting ``ffcv_format``, ``ffcv_ops`` and
``ffcv_loader``, and the ``ffcv`` command line.

>>> from ffcv import Loader, DatasetWriter
"""
from ffcv_format import DatasetWriter, Reader
from ffcv_loader import Loader, OrderOption

from .__about__ import __version__

__all__ = ['__version__', 'Loader', 'OrderOption', 'DatasetWriter', 'Reader']
