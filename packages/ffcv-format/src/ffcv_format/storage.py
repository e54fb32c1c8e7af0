"""Where the bytes of samples are, and the rules every pointer read from a file must pass.

Nothing read from a file is trusted: a data pointer in the metadata is used only if it is
the start of an allocation of the same sample, inside the data region and inside one page,
and of the size its field says (a raw image ``height * width * channels`` bytes, an array its
element size, a bytes value its recorded size). :class:`Reader` checks them with numpy
(``Reader.extents``); the compiled decoders of ffcv-ops check them per chunk with the same
problem codes (``ffcv_ops.storage``), so that both report the same problems.

The *storage state* is what compiled decoders read through: a tuple ::

    (data, page_offsets, page_shift, alloc_ptrs, alloc_sizes, alloc_samples, data_start, data_end,
     page_entries)

- ``data``: uint8 array holding pages (the memory-mapped file, or a process cache);
- ``page_offsets[p]``: where page ``p`` of the file (file offset ``p * page_size``) starts in
  ``data``, or -1 when it is not resident;
- ``page_shift``: log2 of the page size;
- ``alloc_ptrs``/``alloc_sizes``/``alloc_samples``: the allocation table sorted by pointer;
- ``data_start``/``data_end``: the data region ``[data_start, data_end)`` of the file;
- ``page_entries[p]``: the index in ``alloc_ptrs`` of the first allocation at or after the
  start of page ``p`` (so page ``p``'s allocations are ``page_entries[p]`` to
  ``page_entries[p + 1]``): a pointer is looked up among its page's allocations only.
"""
from typing import NamedTuple

import numpy as np

__all__ = ['Allocations', 'make_storage_state', 'page_entries', 'Problem', 'describe', 'check_extents']


class Allocations(NamedTuple):
    """The allocation table sorted by pointer: three uint64 arrays."""
    ptr: np.ndarray
    size: np.ndarray
    sample_id: np.ndarray


def make_storage_state(data, page_offsets, page_size, allocations: Allocations, data_region):
    """The storage state over ``data`` (see the module's docstring)."""
    page_shift = int(page_size).bit_length() - 1
    if 1 << page_shift != page_size:
        raise ValueError(f"page_size must be a power of two, got {page_size}")
    start, end = data_region
    ptrs = np.asarray(allocations.ptr, dtype=np.uint64)
    return (np.asarray(data).view(np.uint8).reshape(-1),
            np.ascontiguousarray(page_offsets, dtype=np.int64),
            np.int64(page_shift),
            # views on the file's table when it is sorted already: not copied (10^8 entries
            # are gigabytes)
            ptrs,
            np.asarray(allocations.size, dtype=np.uint64),
            np.asarray(allocations.sample_id, dtype=np.uint64),
            np.int64(start), np.int64(end),
            page_entries(ptrs, page_size, end))


def page_entries(ptrs, page_size, data_end):
    """For each page of ``[0, data_end)`` and one more: the index in ``ptrs`` (sorted) of the first
    pointer at or after the page's start (an int64 array)."""
    num_pages = int(data_end) // int(page_size) + 2
    starts = np.arange(num_pages, dtype=np.uint64) * np.uint64(page_size)
    return np.searchsorted(ptrs, starts, side='left').astype(np.int64)


class Problem:
    """Codes of what can be wrong with a pointer (0: nothing); the compiled checks return them."""
    OK = 0
    OUTSIDE = 1          # not inside the data region
    NOT_ALLOCATED = 2    # no allocation starts there
    OTHER_SAMPLE = 3     # the allocation belongs to another sample
    CROSSES_PAGE = 4     # the allocation runs past the end of its page
    WRONG_SIZE = 5       # the allocation's size is not the one the field records
    NOT_RESIDENT = 6     # the page is not in memory (a loader bug, not the file's)
    TOO_LARGE = 7        # a size recorded in the metadata is larger than a page


def describe(code, ptr, size=None, expected=None, data_region=None, page_size=None):
    """The words for problem ``code`` of pointer ``ptr`` (its allocation's ``size``, the size
    the field records: ``expected``)."""
    if code == Problem.OUTSIDE:
        region = f" [{data_region[0]}, {data_region[1]})" if data_region is not None else ''
        return f"its data pointer {ptr} is outside the data region{region}"
    if code == Problem.NOT_ALLOCATED:
        return f"its data pointer {ptr} is not an allocation (no entry of the allocation table starts there)"
    if code == Problem.OTHER_SAMPLE:
        return f"its data pointer {ptr} is the allocation of another sample"
    if code == Problem.CROSSES_PAGE:
        return (f"its allocation at {ptr} of {size} bytes runs past the end of its page"
                + (f" ({page_size} bytes)" if page_size else ''))
    if code == Problem.WRONG_SIZE:
        return f"its allocation at {ptr} holds {size} bytes, its metadata says {expected}"
    if code == Problem.NOT_RESIDENT:
        return f"the page of its data at {ptr} was read before the loader made it resident"
    if code == Problem.TOO_LARGE:
        return f"its metadata records {expected} bytes, more than a page ({page_size} bytes)"
    return f"problem {code} with its data pointer {ptr}"


def check_extents(allocations: Allocations, ptrs, samples, expected, data_region, page_size):
    """The sizes of the allocations at ``ptrs`` (of samples ``samples``) and a problem code
    per pointer (vectorised; see the module's docstring for the rules). ``expected``: the
    size each must have, -1 where the field records none. Equal pointers (FFCV 1.0 gives a
    zero-size allocation the pointer of the next one) resolve to the entry of the sample
    with the largest size."""
    ptrs = np.asarray(ptrs, dtype=np.uint64)
    samples = np.asarray(samples, dtype=np.uint64)
    expected = np.asarray(expected, dtype=np.int64)
    sizes = np.full(ptrs.shape, -1, dtype=np.int64)
    codes = np.zeros(ptrs.shape, dtype=np.int8)
    start, end = (np.uint64(v) for v in data_region)
    outside = (ptrs < start) | (ptrs >= end)
    codes[outside] = Problem.OUTSIDE
    table = allocations.ptr
    if table.size == 0:
        codes[~outside] = Problem.NOT_ALLOCATED
        return sizes, codes
    lo = np.searchsorted(table, ptrs, side='left')
    hi = np.searchsorted(table, ptrs, side='right')
    count = np.where(outside, 0, hi - lo)
    codes[~outside & (count == 0)] = Problem.NOT_ALLOCATED
    single = np.flatnonzero(count == 1)                 # the usual case, vectorised
    at = lo[single]
    mine = allocations.sample_id[at] == samples[single]
    codes[single[~mine]] = Problem.OTHER_SAMPLE
    sizes[single[mine]] = _int_sizes(allocations.size[at[mine]])
    for i in np.flatnonzero(count > 1).tolist():        # equal pointers (FFCV 1.0's zero-size ones)
        a, b = int(lo[i]), int(hi[i])
        own = np.flatnonzero(allocations.sample_id[a:b] == samples[i])
        if own.size == 0:
            codes[i] = Problem.OTHER_SAMPLE
        else:
            sizes[i] = _int_sizes(allocations.size[a:b][own]).max()
    found = sizes >= 0
    offset = (ptrs % np.uint64(page_size)).astype(np.int64)
    crosses = found & ((offset + sizes > page_size) | (ptrs.astype(np.int64) + sizes > int(end)))
    codes[crosses] = Problem.CROSSES_PAGE
    wrong = found & ~crosses & (expected >= 0) & (sizes != expected)
    codes[wrong] = Problem.WRONG_SIZE
    return sizes, codes


def _int_sizes(sizes):
    """uint64 sizes as int64, a corrupt size past 2^62 kept large (not wrapped negative)."""
    return np.minimum(np.asarray(sizes, dtype=np.uint64), np.uint64(1 << 62)).astype(np.int64)
