"""FFCV 1.0's ``ffcv.fields.ndarray``."""
from ffcv_format import NDArrayField, TorchTensorField
from ffcv_ops import NDArrayDecoder

__all__ = ['NDArrayField', 'TorchTensorField', 'NDArrayDecoder']
