"""Copying sample bytes out of storage into batch buffers."""
from numba import njit

from ..storage import locate


@njit(nogil=True, cache=True)
def gather_scalars(column, indices, out):
    """``out[i, 0] = column[indices[i]]`` (integer and float fields)."""
    for i in range(indices.shape[0]):
        out[i, 0] = column[indices[i]]


@njit(nogil=True, cache=True)
def gather_fixed(ptrs, nbytes, state, out):
    """Fixed-size allocations (NDArray fields) into rows of a uint8 matrix."""
    data = state[0]
    for i in range(ptrs.shape[0]):
        start = locate(ptrs[i], state)
        out[i, :nbytes] = data[start:start + nbytes]


@njit(nogil=True, cache=True)
def gather_sized(ptrs, sizes, state, out):
    """Variable-size allocations (Bytes fields) into zero-padded rows of a uint8 matrix."""
    data = state[0]
    for i in range(ptrs.shape[0]):
        start = locate(ptrs[i], state)
        size = sizes[i]
        out[i, :size] = data[start:start + size]
        out[i, size:] = 0
