"""Decoders of the scalar fields."""
from dataclasses import replace

import numpy as np
from ffcv_format import FloatField, IntField

from ..allocation_query import AllocationQuery
from ..kernels.copy import gather_scalars
from .base import Decoder


class BasicDecoder(Decoder):
    """A field whose metadata is one fixed-size value per sample, as a ``(batch, 1)`` array of
    ``dtype`` (FFCV 1.0's base of the scalar decoders: subclass it with a ``dtype`` for a
    custom field storing any fixed-size numpy value in its metadata).

    >>> class UInt16Decoder(BasicDecoder):
    ...     dtype = np.dtype('<u2')
    """

    dtype = None
    #: the field classes it decodes (empty: any field)
    field_types = ()
    per_batch = True

    def declare_state_and_memory(self, previous_state):
        self._require_field(*self.field_types)
        if self.dtype is None:
            raise TypeError(f"{type(self).__name__} has no dtype: a BasicDecoder subclass sets one "
                            f"(e.g. dtype = np.dtype('<i8'))")
        return (replace(previous_state, jit_mode=True, shape=(1,), dtype=self.dtype),
                AllocationQuery((1,), self.dtype))

    def generate_code(self):
        column = self.metadata
        if column is None:
            raise RuntimeError(f"{type(self).__name__} was used before the loader gave it the metadata")

        def decode(indices, destination, metadata, storage_state, seed=0):
            gather_scalars(column, indices, destination)
            return destination

        return decode


class IntDecoder(BasicDecoder):
    """An ``IntField`` as a ``(batch, 1)`` int64 array."""

    compiled = False
    dtype = np.dtype('<i8')
    field_types = (IntField,)


class FloatDecoder(BasicDecoder):
    """A ``FloatField`` as a ``(batch, 1)`` float64 array."""

    compiled = False
    dtype = np.dtype('<f8')
    field_types = (FloatField,)
