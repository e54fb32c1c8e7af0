"""ffcv_loader: the Loader, traversal orders, memory managers, batch scheduling."""
from .__about__ import __version__
from .loader import EpochIterator, Loader
from .memory import OSCacheManager, ProcessCacheManager
from .orders import OrderOption, QuasiRandom, Random, Sequential, TraversalOrder

__all__ = ['__version__', 'Loader', 'EpochIterator', 'OrderOption', 'TraversalOrder', 'Sequential',
           'Random', 'QuasiRandom', 'OSCacheManager', 'ProcessCacheManager']
