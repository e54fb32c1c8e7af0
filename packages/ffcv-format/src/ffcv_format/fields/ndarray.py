"""Fixed-shape array fields: numpy arrays and torch tensors."""
import json

import numpy as np

from .base import Field, arguments_from_bytes

MAX_DIMS = 32

NDARRAY_ARGS_TYPE = np.dtype([
    ('shape', '<u8', MAX_DIMS),
    ('type_length', '<u8'),
])


def _check_dtype_and_shape(dtype, shape):
    dtype = np.dtype(dtype)
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"NDArrayField needs a plain numeric dtype, got {dtype}")
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"NDArrayField shape must be a tuple of ints, got {shape!r}") from None
    if not 1 <= len(shape) <= MAX_DIMS:
        raise ValueError(f"NDArrayField shape must have 1 to {MAX_DIMS} dimensions, got {shape}")
    if any(s <= 0 for s in shape):
        raise ValueError(f"NDArrayField dimensions must be positive, got {shape}")
    return dtype, shape


class NDArrayField(Field):
    """A numpy array of fixed dtype and shape per sample.

    >>> NDArrayField(np.dtype('float32'), (3, 224, 224))
    NDArrayField(dtype=float32, shape=(3, 224, 224))
    """

    TYPE_ID = 4
    pointer_names = ('',)

    def __init__(self, dtype, shape):
        self.dtype, self.shape = _check_dtype_and_shape(dtype, shape)
        self.element_size = int(self.dtype.itemsize * np.prod(self.shape))

    @property
    def metadata_type(self):
        return np.dtype('<u8')

    def to_binary(self):
        header = np.zeros(1, dtype=NDARRAY_ARGS_TYPE)
        header['shape'][0][:len(self.shape)] = self.shape
        type_desc = json.dumps(self.dtype.descr).encode('ascii')
        header['type_length'][0] = len(type_desc)
        return arguments_from_bytes(header.tobytes() + type_desc)

    @staticmethod
    def _parse_arguments(binary):
        binary = np.asarray(binary).view(np.uint8).reshape(-1)
        header = binary[:NDARRAY_ARGS_TYPE.itemsize].view(NDARRAY_ARGS_TYPE)[0]
        length = int(header['type_length'])
        if not 0 < length <= binary.size - NDARRAY_ARGS_TYPE.itemsize:
            raise ValueError(f"invalid dtype description length {length}")
        desc = json.loads(binary[NDARRAY_ARGS_TYPE.itemsize:][:length].tobytes().decode('ascii'))
        desc = [tuple(x) for x in desc]
        if len(desc) != 1:
            raise ValueError(f"expected a one-field dtype description, got {desc}")
        dtype = np.dtype(desc)[0]
        shape = [int(s) for s in header['shape']]
        while shape and shape[-1] == 0:
            shape.pop()
        return dtype, tuple(shape)

    @staticmethod
    def from_binary(binary):
        return NDArrayField(*NDArrayField._parse_arguments(binary))

    def _check(self, field):
        """``field`` if it holds this field's dtype and number of elements: any shape is
        accepted, as FFCV 1.0 did (e.g. shape ``()`` for ``(1,)``); it is stored flat and
        read back in the declared shape."""
        if (not isinstance(field, np.ndarray) or field.dtype != self.dtype
                or field.size != self.element_size // self.dtype.itemsize):
            got = (f"a {field.dtype} array of shape {field.shape}" if isinstance(field, np.ndarray)
                   else type(field).__name__)
            raise ValueError(f"{type(self).__name__} expects a {self.dtype} array of shape "
                             f"{self.shape} (or any shape with {self.element_size // self.dtype.itemsize} "
                             f"elements), got {got}")
        return field

    def encode(self, destination, field, malloc):
        field = self._check(np.asarray(field) if isinstance(field, np.generic) else field)
        destination[0], buffer = malloc(self.element_size)
        buffer[:] = np.ascontiguousarray(field).reshape(-1).view(np.uint8)

    def expected_sizes(self, metadata):
        return [np.full(len(metadata), self.element_size, dtype=np.int64)]

    def decode(self, metadata, storage):
        data = storage.read(int(metadata), self.element_size)
        return data.view(self.dtype).reshape(self.shape).copy()

    def __repr__(self):
        return f"{type(self).__name__}(dtype={self.dtype}, shape={self.shape})"


class TorchTensorField(NDArrayField):
    """A torch tensor of fixed dtype and shape per sample (stored like NDArrayField).

    Values are encoded from ``torch.Tensor``; ``Reader`` hands them back as numpy arrays.
    torch is imported only when this field is constructed from a torch dtype.
    """

    TYPE_ID = 6

    def __init__(self, dtype, shape):
        import torch
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"TorchTensorField expects a torch.dtype, got {dtype!r}")
        try:
            np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        except TypeError:
            raise ValueError(f"TorchTensorField cannot store {dtype}: it has no numpy equivalent") from None
        super().__init__(np_dtype, shape)
        self.torch_dtype = dtype

    @staticmethod
    def from_binary(binary):
        field = TorchTensorField.__new__(TorchTensorField)
        NDArrayField.__init__(field, *NDArrayField._parse_arguments(binary))
        return field

    def encode(self, destination, field, malloc):
        if hasattr(field, 'detach') and hasattr(field, 'numpy'):
            field = field.detach().cpu().numpy()
        super().encode(destination, field, malloc)
