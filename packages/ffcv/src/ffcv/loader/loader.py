"""FFCV 1.0's ``ffcv.loader.loader``: the Loader, the order options and their classes."""
from ffcv_loader import Loader, OrderOption
from ffcv_loader.orders import ORDER_TYPE, ORDER_TYPES as ORDER_MAP

__all__ = ['Loader', 'OrderOption', 'ORDER_TYPE', 'ORDER_MAP']
