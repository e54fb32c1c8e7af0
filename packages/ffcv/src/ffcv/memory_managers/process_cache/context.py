"""FFCV 1.0's ``ffcv.memory_managers.process_cache.context``."""
from ffcv_loader.memory import MemoryContext as ProcessCacheContext

__all__ = ['ProcessCacheContext']
