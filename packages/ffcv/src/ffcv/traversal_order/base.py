"""FFCV 1.0's ``ffcv.traversal_order.base``."""
from ffcv_loader import TraversalOrder

__all__ = ['TraversalOrder']
