"""FFCV 1.0's ``ffcv.transforms.ops``: the bridge to torch."""
from ffcv_ops import Convert, ToDevice, ToTensor, ToTorchImage, View

__all__ = ['ToTensor', 'ToDevice', 'ToTorchImage', 'Convert', 'View']
