"""Decoders of the scalar fields."""
from dataclasses import replace

import numpy as np
from ffcv_format import FloatField, IntField

from ..allocation_query import AllocationQuery
from ..kernels.copy import gather_scalars
from .base import Decoder


class _ScalarDecoder(Decoder):
    dtype = None
    field_types = ()

    def declare_state_and_memory(self, previous_state):
        self._require_field(*self.field_types)
        return (replace(previous_state, jit_mode=True, shape=(1,), dtype=self.dtype),
                AllocationQuery((1,), self.dtype))

    def generate_code(self):
        column = self.metadata
        if column is None:
            raise RuntimeError(f"{type(self).__name__} was used before the loader gave it the metadata")

        def decode(indices, destination, metadata, storage_state):
            gather_scalars(column, indices, destination)
            return destination

        return decode


class IntDecoder(_ScalarDecoder):
    """An ``IntField`` as a ``(batch, 1)`` int64 array."""

    compiled = False
    dtype = np.dtype('<i8')
    field_types = (IntField,)


class FloatDecoder(_ScalarDecoder):
    """A ``FloatField`` as a ``(batch, 1)`` float64 array."""

    compiled = False
    dtype = np.dtype('<f8')
    field_types = (FloatField,)
