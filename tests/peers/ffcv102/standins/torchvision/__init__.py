"""A stand-in for the parts of torchvision that FFCV 1.0.2's test suite imports.

torchvision has no CPU build on the machines this peer check runs on, and its PyPI wheel
pulls a CUDA build of torch. The suite uses only ``datasets.CIFAR10`` (downloaded from the
internet), a few ``transforms`` (plain ``torch.nn.Module`` objects applied to uint8 image
batches) and ``utils.save_image``/``make_grid``. This package provides those names with the
same call signatures: CIFAR10 is generated (deterministic, CIFAR-like 32x32 RGB images and
labels, nothing downloaded), and the transforms are small modules doing what their names
say on ``(N, C, H, W)`` tensors. It is put on ``sys.path`` only when the real torchvision
does not import.
"""
from . import datasets, transforms, utils

__version__ = '0.0.0+standin'
__all__ = ['datasets', 'transforms', 'utils']
