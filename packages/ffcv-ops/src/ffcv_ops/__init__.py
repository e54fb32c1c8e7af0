"""ffcv_ops: not implemented yet (see README.md). Importing it gives only its version."""
from .__about__ import __version__

__all__ = ['__version__']
