"""``python -m ffcv``: the ``ffcv`` command line."""
import sys

from .cli import main

sys.exit(main())
