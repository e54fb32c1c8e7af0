"""FFCV 1.0's ``ffcv.loader``."""
from ffcv_loader import EpochIterator, Loader, OrderOption

__all__ = ['Loader', 'OrderOption', 'EpochIterator']
