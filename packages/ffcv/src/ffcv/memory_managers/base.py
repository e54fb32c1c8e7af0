"""FFCV 1.0's ``ffcv.memory_managers.base``."""
from ffcv_loader.memory import MemoryContext, MemoryManager

__all__ = ['MemoryManager', 'MemoryContext']
