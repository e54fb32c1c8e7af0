"""Where samples' data goes in a `.beton` file: pages handed out to writers (FFCV 1.0's
``MemoryAllocator``).

An allocator owns one page at a time. ``malloc(size)`` returns ``(ptr, buffer)``: the file
offset the data will have and a writable view of ``size`` bytes of the page; a full page is
written at its place with ``pwrite``. Allocations never cross a page boundary, and, as in
FFCV 1.0, all the allocations of one sample are kept on one page when the sample fits in a
page: ``malloc`` raises :class:`SampleDoesNotFit` when a sample that already has data on the
current page needs more than the page has left; the sample's allocations are then taken
back, the page is written as it was before the sample, and the caller encodes the sample
again on a fresh page (the writer does this).

Data encoded beforehand goes through the same policy with ``store_sample(sample_id,
buffers)`` and ``store_samples(...)`` (many samples at once): the writer's collecting thread
places every sample this way, in sample order, so where data lands depends only on the
samples (not on which thread encoded them).

Several allocators share a file by sharing a page counter (``next_page``); used on its own,
an allocator counts pages itself::

    with MemoryAllocator('data.beton', offset_start=data_start, page_size=1 << 21) as alloc:
        alloc.set_current_sample(0)
        ptr, buffer = alloc.malloc(100)
        buffer[:] = payload
    alloc.allocations      # [(sample_id, ptr, size), ...]
"""
import itertools
import operator
import os
import threading
from typing import List, Sequence, Tuple, Union

import numpy as np

from .errors import OutputWriteError

__all__ = ['MemoryAllocator', 'SampleDoesNotFit', 'PageCounter', 'pwrite_all', 'checked_size']


def _copy_packed(segments, start, end, out):
    """Copy bytes ``start`` to ``end`` of what the ``(offset, array)`` segments hold into ``out``."""
    position = start
    for offset, data in segments:
        if position >= end:
            break
        if offset + data.size <= position:
            continue
        if offset > position:
            raise ValueError(f"no data for bytes {position} to {offset}")
        take = min(end, offset + data.size) - position
        out[position - start:position - start + take] = data[position - offset:position - offset + take]
        position += take
    if position < end:
        raise ValueError(f"no data for bytes {position} to {end}")


class SampleDoesNotFit(MemoryError):
    """A sample's next allocation does not fit on the page that holds its earlier ones; its
    allocations were taken back: encode the sample again (it will start a fresh page).
    (FFCV 1.0 raised a MemoryError in this case too.)"""


class PageCounter:
    """Hands out page indices to the allocators of one file (thread-safe)."""

    def __init__(self):
        self._next = itertools.count()
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self):
        with self._lock:
            index = next(self._next)
            self.count = index + 1
            return index


def pwrite_all(fd: int, data, offset: int, path=None) -> None:
    """Write all of ``data`` (any buffer) at ``offset`` of ``fd``.

    With ``path`` (the file ``fd`` is written for), a failed write raises
    :class:`~ffcv_format.errors.OutputWriteError` naming it (errno kept), so that a full disk
    is reported as such wherever it happens.
    """
    view = memoryview(data).cast('B')
    try:
        while view.nbytes:
            written = os.pwrite(fd, view, offset)
            view = view[written:]
            offset += written
    except OSError as e:
        if path is None:
            raise
        raise OutputWriteError.from_os_error(os.fspath(path), e) from e


def checked_size(size, page_size: int) -> int:
    """``size`` as an int, if an allocation of that many bytes fits in a page of ``page_size``
    bytes; a ``ValueError`` saying which page size would hold it otherwise."""
    size = operator.index(size)
    if size < 0:
        raise ValueError(f"cannot allocate {size} bytes")
    if size > page_size:
        raise ValueError(f"needs {size} bytes but page_size is {page_size} bytes; use "
                         f"DatasetWriter(..., page_size={_page_size_for(size)}) or larger")
    return size


def _page_size_for(nbytes):
    from .spec import page_size_for
    return page_size_for(nbytes)


class MemoryAllocator:
    """Hands out space in pages of ``page_size`` bytes starting at ``offset_start`` (rounded
    up to a page) of file ``fname`` (FFCV 1.0's constructor), or of the open file ``fd``.

    ``next_page``: a :class:`PageCounter` shared by the allocators of one file (a private
    one by default). ``allocations``: the ``(sample_id, ptr, size)`` of every allocation.
    """

    def __init__(self, fname, offset_start, page_size, *, fd=None, next_page=None):
        self.fname = fname
        self.page_size = int(page_size)
        self.offset = -(-int(offset_start) // self.page_size) * self.page_size
        self.fd = fd
        self._owns_fd = False
        self.next_page = PageCounter() if next_page is None else next_page
        self.page_data = np.zeros(self.page_size, dtype=np.uint8)
        self.my_page = -1
        self.page_offset = 0
        self.current_sample_id = 0
        self.sample_start = 0           # where the current sample's data starts on this page
        self._entries = []              # flat [sample_id, ptr, size, ...] of malloc's allocations
        self._sample_entries = 0        # entries of the current sample on the current page
        self._stored = []               # (n, 3) uint64 arrays of store_samples' allocations
        self._num_stored = 0

    # ------------------------------------------------------------ FFCV 1.0's API

    def __enter__(self):
        if self.fd is None:
            self.fd = os.open(os.fspath(self.fname), os.O_WRONLY | os.O_CREAT, 0o644)
            self._owns_fd = True
        return self

    def __exit__(self, *exc):
        self.flush_page()
        if self._owns_fd:
            os.close(self.fd)
            self.fd = None
            self._owns_fd = False

    def set_current_sample(self, sample_id):
        """The sample the next allocations belong to."""
        self.current_sample_id = int(sample_id)
        self.sample_start = self.page_offset if self.my_page >= 0 else 0
        self._sample_entries = 0

    @property
    def space_left_in_page(self):
        return 0 if self.my_page < 0 else self.page_size - self.page_offset

    @property
    def allocations(self):
        """``[(sample_id, ptr, size), ...]`` of every allocation made (those of ``malloc`` in
        the order they were made, then those of ``store_samples``)."""
        flat = self.entries().tolist()
        return [tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)]

    @property
    def num_allocations(self):
        return len(self._entries) // 3 + self._num_stored

    def entries(self):
        """The allocations as a flat ``uint64`` array (``sample_id, ptr, size`` per row)."""
        flat = np.asarray(self._entries, dtype='<u8')
        if not self._stored:
            return flat
        return np.concatenate([flat] + [block.reshape(-1) for block in self._stored])

    def malloc(self, size):
        """``(ptr, buffer)``: where ``size`` bytes of the current sample will be stored, and a
        writable view to put them in."""
        size = checked_size(size, self.page_size)
        footprint = max(size, 1)  # zero-size allocations still get a distinct pointer
        if self.my_page < 0 or self.page_offset + footprint > self.page_size:
            if self._sample_entries and self.sample_start > 0:
                self._take_back_sample()
                raise SampleDoesNotFit(f"sample {self.current_sample_id} does not fit in what is left "
                                       f"of its page; encode it again on a fresh page")
            self.flush_page()
            self.my_page = self.next_page()
            self.page_offset = 0
            self.sample_start = 0
        ptr = self.offset + self.my_page * self.page_size + self.page_offset
        buffer = self.page_data[self.page_offset:self.page_offset + size]
        self.page_offset += footprint
        self._entries += (self.current_sample_id, ptr, size)
        self._sample_entries += 1
        return ptr, buffer

    def store_sample(self, sample_id: int, buffers: Sequence[np.ndarray]) -> List[int]:
        """Store one sample whose data is already encoded: ``buffers`` are its allocations'
        contents (uint8 arrays), in the order they were made. Returns their pointers, placed
        as ``malloc`` places them (the sample is moved to a fresh page when it does not fit
        in what is left of the current one, and spans pages only when larger than a page)."""
        while True:
            self.set_current_sample(sample_id)
            pointers = []
            try:
                for data in buffers:
                    ptr, buffer = self.malloc(data.size)
                    buffer[:] = data
                    pointers.append(ptr)
                return pointers
            except SampleDoesNotFit:
                continue    # taken back; the next attempt starts a fresh page

    def store_samples(self, sample_ids: Sequence[int], counts: Sequence[int], sizes: Sequence[int],
                      packed: Union[np.ndarray, Sequence[Tuple[int, np.ndarray]]]) -> np.ndarray:
        """Store samples whose data is already encoded, in order (the writer's collecting thread
        does this); returns the pointers, a uint64 array with one per allocation.

        Sample ``sample_ids[i]`` made ``counts[i]`` allocations (at least one), of ``sizes``
        bytes, in that order. ``packed`` holds their contents one after the other, each taking
        ``max(size, 1)`` bytes (an empty allocation: one zero byte): a uint8 array, or a list
        of ``(offset, array)`` segments covering them in order, no allocation split between
        two segments. They are placed exactly as :meth:`store_sample` places them one sample
        after the other (so as ``malloc`` does); samples that fit next to each other on a page
        are copied in one go.
        """
        counts = np.asarray(counts, dtype=np.int64)
        sizes = np.asarray(sizes, dtype=np.int64)
        if int(counts.sum()) != sizes.size or (counts < 1).any():
            raise ValueError(f"counts (sum {int(counts.sum())}, each at least 1) must add up to the "
                             f"number of sizes ({sizes.size})")
        segments = [(0, packed)] if isinstance(packed, np.ndarray) else list(packed)
        # offsets[a]: where allocation a starts in ``packed``
        offsets = np.zeros(sizes.size + 1, dtype=np.int64)
        np.cumsum(np.maximum(sizes, 1), out=offsets[1:])
        last = np.cumsum(counts)            # one past each sample's last allocation
        sample_ends = offsets[last]         # nondecreasing
        first = last - counts
        pointers = np.empty(sizes.size, dtype=np.uint64)
        i, n = 0, counts.size
        while i < n:
            a = int(first[i])
            if self.my_page >= 0:
                # the samples from i on that fit in what is left of the page
                room = int(offsets[a]) + self.page_size - self.page_offset
                j = int(np.searchsorted(sample_ends, room, side='right'))
                if j > i:
                    b = int(last[j - 1])
                    start, end = int(offsets[a]), int(offsets[b])
                    _copy_packed(segments, start, end,
                                 self.page_data[self.page_offset:self.page_offset + end - start])
                    page_start = self.offset + self.my_page * self.page_size + self.page_offset
                    placed = offsets[a:b] - start + page_start
                    pointers[a:b] = placed
                    entries = np.empty((b - a, 3), dtype='<u8')
                    entries[:, 0] = np.repeat(np.asarray(sample_ids[i:j], dtype=np.int64), counts[i:j])
                    entries[:, 1] = placed
                    entries[:, 2] = sizes[a:b]
                    self._stored.append(entries)
                    self._num_stored += b - a
                    self.page_offset += end - start
                    i = j
                    continue
                self.flush_page()           # sample i does not fit here: it starts a fresh page
            if int(sample_ends[i] - offsets[a]) <= self.page_size:
                self.my_page = self.next_page()
                self.page_offset = 0
                continue
            end = int(last[i])              # larger than a page: spans pages
            buffers = []
            for k in range(a, end):
                data = np.empty(int(sizes[k]), dtype=np.uint8)
                _copy_packed(segments, int(offsets[k]), int(offsets[k] + sizes[k]), data)
                buffers.append(data)
            pointers[a:end] = self.store_sample(sample_ids[i], buffers)
            i += 1
        return pointers

    def flush_page(self):
        """Write the current page (up to what was allocated; the rest is zeros) at its place.

        A failed write raises :class:`~ffcv_format.errors.OutputWriteError` naming ``fname``.
        """
        if self.my_page < 0:
            return
        pwrite_all(self.fd, self.page_data, self.offset + self.my_page * self.page_size, path=self.fname)
        self.page_data[:self.page_offset] = 0
        self.my_page = -1
        self.page_offset = 0
        self.sample_start = 0

    # ------------------------------------------------------------ internals

    def _take_back_sample(self):
        """Forget the current sample's allocations, and write the page as it was before it:
        the sample's next attempt starts a fresh page."""
        del self._entries[-3 * self._sample_entries:]
        self._sample_entries = 0
        self.page_data[self.sample_start:self.page_offset] = 0
        self.page_offset = self.sample_start
        self.flush_page()

    def move_pages(self, delta):
        """Shift every pointer handed out by ``delta`` bytes (the writer moved the pages)."""
        for i in range(1, len(self._entries), 3):
            self._entries[i] += delta
        for block in self._stored:
            block[:, 1] += np.uint64(delta)
        self.offset += delta
