"""FFCV 1.0's ``ffcv.memory_managers.os_cache``."""
from ffcv_loader.memory import MemoryContext as OSCacheContext
from ffcv_loader.memory import OSCacheManager

__all__ = ['OSCacheManager', 'OSCacheContext']
