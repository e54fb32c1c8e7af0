"""Decoder of fixed-shape array fields."""
from dataclasses import replace

import numpy as np
from ffcv_format import NDArrayField

from ..allocation_query import AllocationQuery
from ..kernels.copy import gather_fixed
from ..storage import sample_bits, storage_error
from .base import Decoder


class NDArrayDecoder(Decoder):
    """An ``NDArrayField`` (or ``TorchTensorField``) as a ``(batch, *shape)`` array of its dtype."""

    compiled = False

    def declare_state_and_memory(self, previous_state):
        self._require_field(NDArrayField)
        shape, dtype = tuple(self.field.shape), np.dtype(self.field.dtype)
        return (replace(previous_state, jit_mode=True, shape=shape, dtype=dtype),
                AllocationQuery(shape, dtype))

    def generate_code(self):
        column = self.metadata
        nbytes = int(self.field.element_size)
        checked = sample_bits(len(column))

        def decode(indices, destination, metadata, storage_state, seed=0):
            rows = destination.reshape(destination.shape[0], -1).view(np.uint8)
            ptrs = column[indices]
            row, code = gather_fixed(ptrs, indices, nbytes, storage_state, rows, checked)
            if code:
                raise storage_error(code, indices[row], ptrs[row], None, nbytes, storage_state)
            return destination

        return decode
