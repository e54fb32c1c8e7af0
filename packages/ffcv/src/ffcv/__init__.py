"""ffcv: the meta-package. FFCV 1.0's import paths arrive with the Loader work; until
then use ffcv_format directly (see the repository README)."""
from .__about__ import __version__

__all__ = ['__version__']
