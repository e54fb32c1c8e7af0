"""FFCV 1.0's ``ffcv.traversal_order.random``."""
from ffcv_loader import Random

__all__ = ['Random']
