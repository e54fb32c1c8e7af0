"""FFCV 1.0's ``ffcv.memory_managers.process_cache.manager``."""
from ffcv_loader.memory import ProcessCacheManager

__all__ = ['ProcessCacheManager']
