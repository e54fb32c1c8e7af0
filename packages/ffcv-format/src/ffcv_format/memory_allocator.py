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

import numpy as np

__all__ = ['MemoryAllocator', 'SampleDoesNotFit', 'PageCounter', 'pwrite_all']


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


def pwrite_all(fd, data, offset):
    """Write all of ``data`` at ``offset`` of ``fd``."""
    view = memoryview(data).cast('B')
    while view.nbytes:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


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
        self._entries = []              # flat [sample_id, ptr, size, ...]
        self._sample_entries = 0        # entries of the current sample on the current page

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
        """``[(sample_id, ptr, size), ...]`` of every allocation made."""
        flat = self._entries
        return [tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)]

    @property
    def num_allocations(self):
        return len(self._entries) // 3

    def entries(self):
        """The allocations as a flat ``uint64`` array (``sample_id, ptr, size`` per row)."""
        return np.asarray(self._entries, dtype='<u8')

    def malloc(self, size):
        """``(ptr, buffer)``: where ``size`` bytes of the current sample will be stored, and a
        writable view to put them in."""
        size = operator.index(size)
        if size < 0:
            raise ValueError(f"cannot allocate {size} bytes")
        if size > self.page_size:
            raise ValueError(f"needs {size} bytes but page_size is {self.page_size} bytes; use "
                             f"DatasetWriter(..., page_size={_page_size_for(size)}) or larger")
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

    def flush_page(self):
        """Write the current page (up to what was allocated; the rest is zeros) at its place."""
        if self.my_page < 0:
            return
        pwrite_all(self.fd, self.page_data, self.offset + self.my_page * self.page_size)
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
        self.offset += delta
