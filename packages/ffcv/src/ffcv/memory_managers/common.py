"""FFCV 1.0's ``ffcv.memory_managers.common``."""
from typing import Sequence

#: what ``MemoryManager.schedule_epoch`` takes: the epoch's batches of sample ids
BATCHES_TYPE = Sequence[Sequence[int]]

__all__ = ['BATCHES_TYPE']
