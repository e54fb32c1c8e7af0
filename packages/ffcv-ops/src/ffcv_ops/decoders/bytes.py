"""Decoder of variable-size byte fields."""
from dataclasses import replace

import numpy as np
from ffcv_format import BytesField

from ..allocation_query import AllocationQuery
from ..kernels.copy import gather_sized
from ..storage import storage_error
from .base import Decoder


class BytesDecoder(Decoder):
    """A ``BytesField`` (or ``JSONField``) as a ``(batch, max_size)`` uint8 array.

    ``max_size`` is the largest sample of the whole field; shorter samples are padded with
    zeros. The sizes are in the field's metadata (``loader.reader.metadata[name]['size']``).
    """

    compiled = False

    def declare_state_and_memory(self, previous_state):
        self._require_field(BytesField)
        sizes = self.metadata['size']
        error = self._too_large('a value', sizes, self.page_size)
        if error is not None:
            raise error
        self.max_size = int(sizes.max()) if sizes.size else 0
        return (replace(previous_state, jit_mode=True, shape=(self.max_size,), dtype=np.dtype('u1')),
                AllocationQuery((self.max_size,), np.dtype('u1')))

    def generate_code(self):
        ptr_column, size_column = self.metadata['ptr'], self.metadata['size']

        def decode(indices, destination, metadata, storage_state, seed=0):
            ptrs, sizes = ptr_column[indices], size_column[indices].astype(np.int64)
            row, code = gather_sized(ptrs, sizes, indices, storage_state, destination)
            if code:
                raise storage_error(code, indices[row], ptrs[row], None, sizes[row], storage_state)
            return destination

        return decode
