"""FFCV 1.0's ``ffcv.memory_managers.process_cache``."""
from ffcv_loader.memory import MemoryContext as ProcessCacheContext
from ffcv_loader.memory import ProcessCacheManager

__all__ = ['ProcessCacheManager', 'ProcessCacheContext']
