"""How compiled decoders reach sample bytes, wherever the loader keeps the pages.

A *storage state* is a tuple ``(data, page_offsets, page_shift, alloc_ptrs, alloc_sizes)``:

- ``data``: a uint8 array holding pages (the memory-mapped file, or a process cache);
- ``page_offsets[p]``: where page ``p`` of the file (file offset ``p * page_size``) starts in
  ``data``, or -1 when it is not resident;
- ``page_shift``: log2 of the page size;
- ``alloc_ptrs``/``alloc_sizes``: the allocation table sorted by pointer, so that a
  decoder knowing only a pointer (images) finds its size.

An allocation never crosses a page boundary (see docs/format.md), so one lookup per
allocation suffices. ``memory_read(ptr, state)`` is what FFCV 1.0 decoders call.
"""
import numpy as np
from numba import njit

__all__ = ['make_storage_state', 'memory_read', 'read_at', 'locate', 'allocation_sizes',
           'locate_many']


def make_storage_state(data, page_offsets, page_size, alloc_ptrs, alloc_sizes):
    page_shift = int(page_size).bit_length() - 1
    if 1 << page_shift != page_size:
        raise ValueError(f"page_size must be a power of two, got {page_size}")
    return (np.asarray(data).view(np.uint8).reshape(-1),
            np.ascontiguousarray(page_offsets, dtype=np.int64),
            np.int64(page_shift),
            # views on the file's allocation table when it is already sorted: not copied
            # (the table of a 10^8-sample file is gigabytes)
            np.asarray(alloc_ptrs, dtype=np.uint64),
            np.asarray(alloc_sizes, dtype=np.uint64))


@njit(nogil=True, cache=True, inline='always')
def locate(ptr, state):
    """Offset into ``state[0]`` of file pointer ``ptr``."""
    page_offsets = state[1]
    shift = state[2]
    page = np.int64(ptr) >> shift
    base = page_offsets[page]
    if base < 0:
        raise RuntimeError("a page was read before the loader made it resident")
    return base + (np.int64(ptr) & ((np.int64(1) << shift) - 1))


@njit(nogil=True, cache=True)
def read_at(ptr, size, state):
    """The ``size`` bytes at file pointer ``ptr`` (a view)."""
    start = locate(ptr, state)
    return state[0][start:start + size]


@njit(nogil=True, cache=True)
def memory_read(ptr, state):
    """The whole allocation starting at ``ptr`` (size from the allocation table)."""
    ptrs = state[3]
    i = np.searchsorted(ptrs, np.uint64(ptr))
    if i >= ptrs.shape[0] or ptrs[i] != np.uint64(ptr):
        raise RuntimeError("no allocation starts at this pointer")
    return read_at(ptr, np.int64(state[4][i]), state)


def locate_many(ptrs, state):
    """``locate`` for an array of pointers, in numpy (for decoders that run as Python)."""
    ptrs = np.asarray(ptrs, dtype=np.int64)
    shift = int(state[2])
    base = state[1][ptrs >> shift]
    if base.size and base.min() < 0:
        raise RuntimeError("a page was read before the loader made it resident")
    return base + (ptrs & ((1 << shift) - 1))


def allocation_sizes(ptrs, state):
    """Sizes of the allocations starting at ``ptrs`` (numpy)."""
    table = state[3]
    ptrs = np.asarray(ptrs, dtype=np.uint64)
    i = np.searchsorted(table, ptrs)
    if ptrs.size and (i.max() >= table.size or np.any(table[i] != ptrs)):
        raise RuntimeError("no allocation starts at one of the pointers")
    return state[4][i].astype(np.int64)
