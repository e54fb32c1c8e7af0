"""FFCV 1.0's ``ffcv.traversal_order.quasi_random``."""
from ffcv_loader import QuasiRandom

__all__ = ['QuasiRandom']
