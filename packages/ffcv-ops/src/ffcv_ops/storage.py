"""How compiled decoders reach sample bytes, wherever the loader keeps the pages, checking
every pointer on the way.

Decoders read through a *storage state* (defined in ``ffcv_format.storage``: the data
array, page offsets, page shift, the allocation table sorted by pointer, the data region,
where each page's allocations start in the table):
the same compiled code reads the memory-mapped file or the process cache.

Nothing read from the file is trusted. ``find(ptr, sample, state)`` gives where sample
``sample``'s allocation at file pointer ``ptr`` is in ``state[0]`` and its size, and a
problem code (``ffcv_format.storage.Problem``) when the pointer is outside the data region,
starts no allocation, starts another sample's, runs past its page, or its page is not
resident. The per-chunk kernels (``kernels/copy.py``, ``kernels/images.py``) do the same for
every sample (``find_in``, on the state's arrays unpacked once per chunk; where the
metadata gives the size, the table is looked up once per sample) and stop at the
first problem, returning the row and the code; the decoder then
raises ``FormatError`` naming the sample. So a damaged file gives an error, never a signal,
another sample's bytes or zeros. ``memory_read(ptr, state)`` is what FFCV 1.0 decoders call:
it checks all but the owner (it is not told the sample).
"""
import numpy as np
from ffcv_format.errors import FormatError
from ffcv_format.storage import Problem, describe, make_storage_state
from numba import njit

__all__ = ['make_storage_state', 'find', 'find_in', 'find_once', 'resident_in', 'sample_bits', 'find_many',
           'memory_read', 'read_at', 'locate', 'storage_error',
           'OK', 'OUTSIDE', 'NOT_ALLOCATED', 'OTHER_SAMPLE', 'CROSSES_PAGE', 'WRONG_SIZE', 'NOT_RESIDENT',
           'TOO_LARGE']

OK = Problem.OK
OUTSIDE = Problem.OUTSIDE
NOT_ALLOCATED = Problem.NOT_ALLOCATED
OTHER_SAMPLE = Problem.OTHER_SAMPLE
CROSSES_PAGE = Problem.CROSSES_PAGE
WRONG_SIZE = Problem.WRONG_SIZE
NOT_RESIDENT = Problem.NOT_RESIDENT
TOO_LARGE = Problem.TOO_LARGE

_NOWHERE = np.int64(-1)


# The compiled helpers take the storage state's arrays one by one (``*_in`` functions):
# a per-chunk kernel unpacks the state once, before its loop. Taking an array out of the
# state tuple inside the loop costs a reference count update per sample (measured: +13% per
# 3 KiB sample read in random order), and with several worker threads sharing the state,
# contention on that count.


@njit(nogil=True, cache=True, inline='always')
def resident_in(ptr, size, data, page_offsets, shift):
    """``(start in data, code)`` of ``size`` bytes at file pointer ``ptr``, once the pointer is
    known to lie in the data region: ``NOT_RESIDENT`` when its page is not in memory."""
    page = np.int64(ptr) >> shift
    if page >= page_offsets.shape[0]:
        return _NOWHERE, OUTSIDE
    base = page_offsets[page]
    if base < 0:
        return _NOWHERE, NOT_RESIDENT
    start = base + (np.int64(ptr) & ((np.int64(1) << shift) - 1))
    if start + size > data.shape[0]:
        return _NOWHERE, OUTSIDE
    return start, OK


@njit(nogil=True, cache=True, inline='always')
def _first_entry(ptr, alloc_ptrs, page_entries, shift):
    """The index of the first allocation at or after file pointer ``ptr`` (in the data region),
    searched among the allocations of its page only: a guess from where ``ptr`` lies between
    the page's first and last allocation (exact when sizes are equal), then a galloping search
    from it. Few, nearby memory reads, where a search of the whole table misses the cache."""
    page = np.int64(ptr) >> shift
    lo = page_entries[page]
    hi = page_entries[page + 1]
    if hi <= lo or ptr <= alloc_ptrs[lo]:
        return lo
    first = alloc_ptrs[lo]
    last = alloc_ptrs[hi - 1]
    if ptr > last:
        return hi
    guess = lo + np.int64(np.float64(ptr - first) / np.float64(last - first + np.uint64(1)) * np.float64(hi - lo))
    guess = min(max(guess, lo), hi - 1)
    step = np.int64(1)
    if alloc_ptrs[guess] < ptr:          # the answer is after the guess
        a = guess + 1
        b = a
        while b < hi and alloc_ptrs[b] < ptr:
            a = b + 1
            b = a + step
            step *= 2
        b = min(b, hi)
        return a + np.searchsorted(alloc_ptrs[a:b], ptr)
    b = guess                            # alloc_ptrs[b] >= ptr: the answer is at or before b
    a = b - step
    while a > lo and alloc_ptrs[a] >= ptr:
        b = a
        step *= 2
        a = b - step
    a = max(a, lo)
    return a + np.searchsorted(alloc_ptrs[a:b + 1], ptr)


@njit(nogil=True, cache=True, inline='always')
def find_in(ptr, sample, data, page_offsets, shift, alloc_ptrs, alloc_sizes, alloc_samples, data_start, data_end,
            page_entries):
    """:func:`find` on the storage state's arrays (``find_in(ptr, sample, *state)``)."""
    ptr = np.uint64(ptr)
    if ptr < np.uint64(data_start) or ptr >= np.uint64(data_end):
        return _NOWHERE, np.int64(0), OUTSIDE
    i = _first_entry(ptr, alloc_ptrs, page_entries, shift)
    if i >= alloc_ptrs.shape[0] or alloc_ptrs[i] != ptr:
        return _NOWHERE, np.int64(0), NOT_ALLOCATED
    # equal pointers (FFCV 1.0 gives a zero-size allocation the pointer of the next one):
    # the sample's own entry with the largest size
    size = np.int64(-1)
    while i < alloc_ptrs.shape[0] and alloc_ptrs[i] == ptr:
        if alloc_samples[i] == np.uint64(sample):
            candidate = np.int64(min(alloc_sizes[i], np.uint64(1 << 62)))
            if candidate > size:
                size = candidate
        i += 1
    if size < 0:
        return _NOWHERE, np.int64(0), OTHER_SAMPLE
    page_mask = (np.int64(1) << shift) - 1
    if (np.int64(ptr) & page_mask) + size > page_mask + 1 or np.int64(ptr) + size > data_end:
        return _NOWHERE, size, CROSSES_PAGE
    start, code = resident_in(ptr, size, data, page_offsets, shift)
    return start, size, code


@njit(nogil=True, cache=True)
def find(ptr, sample, state):
    """``(start in state[0], size, code)`` of sample ``sample``'s allocation at file pointer
    ``ptr``; ``code`` is 0 (``OK``) or what is wrong (then start is -1)."""
    data, page_offsets, shift, alloc_ptrs, alloc_sizes, alloc_samples, data_start, data_end, page_entries = state
    return find_in(ptr, sample, data, page_offsets, shift, alloc_ptrs, alloc_sizes, alloc_samples, data_start,
                   data_end, page_entries)


@njit(nogil=True, cache=True)
def find_once(ptr, sample, data, page_offsets, shift, alloc_ptrs, alloc_sizes, alloc_samples, data_start, data_end,
              page_entries):
    """``find_in``, not inlined: for the first read of a sample by a kernel that then records
    it as checked (``kernels/copy.py``'s ``gather_fixed``), so that this rare path stays out of
    the kernel's loop (inlined, it made every sample's copy slower)."""
    return find_in(ptr, sample, data, page_offsets, shift, alloc_ptrs, alloc_sizes, alloc_samples, data_start,
                   data_end, page_entries)


def sample_bits(num_samples: int) -> np.ndarray:
    """A bit per sample, all clear: where a decoder records the samples whose pointer was
    checked against the allocation table (``kernels/copy.py``'s ``gather_fixed``)."""
    return np.zeros(int(num_samples) // 8 + 1, dtype=np.uint8)


@njit(nogil=True, cache=True)
def find_many(ptrs, samples, state, starts, sizes):
    """``find`` for a chunk: fills ``starts`` and ``sizes``; returns ``(row, code)`` of the first
    problem, or ``(-1, 0)``."""
    data, page_offsets, shift, alloc_ptrs, alloc_sizes, alloc_samples, data_start, data_end, page_entries = state
    for i in range(ptrs.shape[0]):
        start, size, code = find_in(ptrs[i], samples[i], data, page_offsets, shift, alloc_ptrs, alloc_sizes,
                                    alloc_samples, data_start, data_end, page_entries)
        if code != OK:
            sizes[i] = size
            return i, code
        starts[i] = start
        sizes[i] = size
    return -1, OK


@njit(nogil=True, cache=True)
def locate(ptr, state):
    """Offset into ``state[0]`` of file pointer ``ptr`` (no allocation checked; FFCV 1.0's
    helpers use it). Raises when the pointer is outside the data region or not resident."""
    if np.uint64(ptr) < np.uint64(state[6]) or np.uint64(ptr) >= np.uint64(state[7]):
        raise ValueError("a data pointer is outside the data region (corrupted file?)")
    start, code = resident_in(ptr, 0, state[0], state[1], state[2])
    if code == NOT_RESIDENT:
        raise RuntimeError("a page was read before the loader made it resident")
    if code != OK:
        raise ValueError("a data pointer is outside the data region (corrupted file?)")
    return start


@njit(nogil=True, cache=True)
def read_at(ptr, size, state):
    """The ``size`` bytes at file pointer ``ptr`` (a view), inside one page of the data region."""
    page_mask = (np.int64(1) << state[2]) - 1
    if size < 0 or (np.int64(ptr) & page_mask) + size > page_mask + 1 or np.int64(ptr) + size > state[7]:
        raise ValueError("a read runs past the end of its page or of the data region (corrupted file?)")
    start = locate(ptr, state)
    return state[0][start:start + size]


@njit(nogil=True, cache=True)
def memory_read(ptr, state):
    """The whole allocation starting at ``ptr`` (size from the allocation table): what FFCV 1.0
    decoders call. Raises when ``ptr`` starts no allocation of the data region or the
    allocation runs past its page."""
    ptr = np.uint64(ptr)
    if ptr < np.uint64(state[6]) or ptr >= np.uint64(state[7]):
        raise ValueError("a data pointer is outside the data region (corrupted file?)")
    alloc_ptrs, alloc_sizes = state[3], state[4]
    i = _first_entry(ptr, alloc_ptrs, state[8], state[2])
    if i >= alloc_ptrs.shape[0] or alloc_ptrs[i] != ptr:
        raise ValueError("no allocation starts at a data pointer (corrupted file?)")
    size = np.int64(min(alloc_sizes[i], np.uint64(1 << 62)))
    i += 1
    while i < alloc_ptrs.shape[0] and alloc_ptrs[i] == ptr:
        size = max(size, np.int64(min(alloc_sizes[i], np.uint64(1 << 62))))
        i += 1
    return read_at(ptr, size, state)


def storage_error(code, sample, ptr, size=None, expected=None, state=None):
    """The ``FormatError`` (or, for a page not resident, the ``RuntimeError``: a loader bug) for
    problem ``code`` of ``sample``'s pointer ``ptr``, for a decoder to raise."""
    if size is None and state is not None:
        size = find(ptr, sample, state)[1]
    region = (int(state[6]), int(state[7])) if state is not None else None
    page_size = (1 << int(state[2])) if state is not None else None
    message = f"sample {int(sample)}: " + describe(int(code), int(ptr), None if size is None else int(size),
                                                   None if expected is None else int(expected), region, page_size)
    if code == NOT_RESIDENT:
        return RuntimeError(message)
    return FormatError(message + " (corrupted file? `ffcv verify FILE` lists every problem)")
