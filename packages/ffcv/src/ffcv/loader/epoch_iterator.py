"""FFCV 1.0's ``ffcv.loader.epoch_iterator``: the iterator over one epoch's batches."""
from ffcv_loader import EpochIterator

__all__ = ['EpochIterator']
