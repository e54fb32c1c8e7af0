"""FFCV 1.0's ``ffcv.memory_managers``."""
from ffcv_loader.memory import MemoryContext, MemoryManager, OSCacheManager, ProcessCacheManager

__all__ = ['OSCacheManager', 'ProcessCacheManager', 'MemoryManager', 'MemoryContext']
