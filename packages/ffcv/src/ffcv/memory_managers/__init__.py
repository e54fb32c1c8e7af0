"""FFCV 1.0's ``ffcv.memory_managers``."""
from ffcv_loader import OSCacheManager, ProcessCacheManager

__all__ = ['OSCacheManager', 'ProcessCacheManager']
