"""FFCV 1.0's ``ffcv.traversal_order.sequential``."""
from ffcv_loader import Sequential

__all__ = ['Sequential']
