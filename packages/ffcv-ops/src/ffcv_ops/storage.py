"""How compiled decoders reach sample bytes, wherever the loader keeps the pages, checking
every pointer on the way.

Decoders read through a *storage state* (defined in ``ffcv_format.storage``: the data
array, page offsets, page shift, the allocation table sorted by pointer, the data region):
the same compiled code reads the memory-mapped file or the process cache.

Nothing read from the file is trusted. ``find(ptr, sample, state)`` gives where sample
``sample``'s allocation at file pointer ``ptr`` is in ``state[0]`` and its size, and a
problem code (``ffcv_format.storage.Problem``) when the pointer is outside the data region,
starts no allocation, starts another sample's, runs past its page, or its page is not
resident. The per-chunk kernels (``kernels/copy.py``, the image decoders) call it for every
sample and stop at the first problem, returning the row and the code; the decoder then
raises ``FormatError`` naming the sample. So a damaged file gives an error, never a signal,
another sample's bytes or zeros. ``memory_read(ptr, state)`` is what FFCV 1.0 decoders call:
it checks all but the owner (it is not told the sample).
"""
import numpy as np
from ffcv_format.errors import FormatError
from ffcv_format.storage import Problem, describe, make_storage_state
from numba import njit

__all__ = ['make_storage_state', 'find', 'find_many', 'memory_read', 'read_at', 'locate', 'storage_error',
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


@njit(nogil=True, cache=True, inline='always')
def _resident(ptr, size, state):
    """``(start in state[0], code)`` of ``size`` bytes at file pointer ``ptr``, once the pointer
    is known to lie in the data region."""
    page_offsets = state[1]
    shift = state[2]
    page = np.int64(ptr) >> shift
    if page >= page_offsets.shape[0]:
        return _NOWHERE, OUTSIDE
    base = page_offsets[page]
    if base < 0:
        return _NOWHERE, NOT_RESIDENT
    start = base + (np.int64(ptr) & ((np.int64(1) << shift) - 1))
    if start + size > state[0].shape[0]:
        return _NOWHERE, OUTSIDE
    return start, OK


@njit(nogil=True, cache=True)
def find(ptr, sample, state):
    """``(start in state[0], size, code)`` of sample ``sample``'s allocation at file pointer
    ``ptr``; ``code`` is 0 (``OK``) or what is wrong (then start is -1)."""
    ptr = np.uint64(ptr)
    if ptr < np.uint64(state[6]) or ptr >= np.uint64(state[7]):
        return _NOWHERE, np.int64(0), OUTSIDE
    ptrs = state[3]
    i = np.searchsorted(ptrs, ptr)
    if i >= ptrs.shape[0] or ptrs[i] != ptr:
        return _NOWHERE, np.int64(0), NOT_ALLOCATED
    # equal pointers (FFCV 1.0 gives a zero-size allocation the pointer of the next one):
    # the sample's own entry with the largest size
    size = np.int64(-1)
    while i < ptrs.shape[0] and ptrs[i] == ptr:
        if state[5][i] == np.uint64(sample):
            candidate = np.int64(min(state[4][i], np.uint64(1 << 62)))
            if candidate > size:
                size = candidate
        i += 1
    if size < 0:
        return _NOWHERE, np.int64(0), OTHER_SAMPLE
    page_mask = (np.int64(1) << state[2]) - 1
    if (np.int64(ptr) & page_mask) + size > page_mask + 1 or np.int64(ptr) + size > state[7]:
        return _NOWHERE, size, CROSSES_PAGE
    start, code = _resident(ptr, size, state)
    return start, size, code


@njit(nogil=True, cache=True)
def find_many(ptrs, samples, state, starts, sizes):
    """``find`` for a chunk: fills ``starts`` and ``sizes``; returns ``(row, code)`` of the first
    problem, or ``(-1, 0)``."""
    for i in range(ptrs.shape[0]):
        start, size, code = find(ptrs[i], samples[i], state)
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
    start, code = _resident(ptr, 0, state)
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
    ptrs = state[3]
    i = np.searchsorted(ptrs, ptr)
    if i >= ptrs.shape[0] or ptrs[i] != ptr:
        raise ValueError("no allocation starts at a data pointer (corrupted file?)")
    size = np.int64(min(state[4][i], np.uint64(1 << 62)))
    i += 1
    while i < ptrs.shape[0] and ptrs[i] == ptr:
        size = max(size, np.int64(min(state[4][i], np.uint64(1 << 62))))
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
