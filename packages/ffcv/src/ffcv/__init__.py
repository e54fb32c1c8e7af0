"""ffcv: fast data loading for training computer vision models.

The meta-package: FFCV 1.0's import paths (``ffcv.fields``, ``ffcv.loader``,
``ffcv.transforms``, ``ffcv.pipeline``, ...) re-exporting ``ffcv_format``, ``ffcv_ops`` and
``ffcv_loader``, and the ``ffcv`` command line.

>>> from ffcv import Loader, DatasetWriter

The names below are imported on first use, so that ``import ffcv`` (and the command line)
does not pay for torch and numba until a loader is needed.
"""
import importlib

from .__about__ import __version__

_LAZY = {
    'Loader': 'ffcv_loader',
    'OrderOption': 'ffcv_loader',
    'DatasetWriter': 'ffcv_format',
    'Reader': 'ffcv_format',
}

__all__ = ['__version__', *_LAZY]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ffcv' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
