"""FFCV 1.0's ``ffcv.fields.ndarray``."""
from ffcv_format import NDArrayField, TorchTensorField
from ffcv_format.fields.ndarray import NDARRAY_ARGS_TYPE as NDArrayArgsType
from ffcv_ops import NDArrayDecoder

__all__ = ['NDArrayField', 'TorchTensorField', 'NDArrayDecoder', 'NDArrayArgsType']
