"""FFCV 1.0's ``ffcv.traversal_order``."""
from ffcv_loader import QuasiRandom, Random, Sequential, TraversalOrder

__all__ = ['TraversalOrder', 'Sequential', 'Random', 'QuasiRandom']
