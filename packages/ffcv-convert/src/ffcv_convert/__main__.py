"""``python -m ffcv_convert``: the ``ffcv-convert`` command line."""
import sys

from .cli import main

sys.exit(main())
