"""``ffcv demo``: the first thing to run. Real images (scikit-learn's handwritten digits)
are converted into .beton files, a small CNN trains on them on the CPU with ffcv's
``Loader``, and the loading is timed against a PyTorch ``DataLoader`` doing the same job.

Modules: :mod:`.data` (the digits and their .beton files), :mod:`.loading` (the ffcv
pipelines), :mod:`.model` (the network), :mod:`.training` (training and evaluation),
:mod:`.comparison` (the DataLoader and the timing), :mod:`.command` (the command line).
"""
from .command import add_commands

__all__ = ['add_commands']
