"""FFCV 1.0's ``ffcv.memory_allocator``: the writer's page allocator."""
from ffcv_format.memory_allocator import MemoryAllocator

__all__ = ['MemoryAllocator']
