"""Staged encoding: how the writer makes a file that does not depend on its number of threads.

Encoding threads encode a chunk of samples into memory (:class:`Staging`, the ``malloc`` of
staged encoding): each allocation gets zeroed space in a memory block and a *provisional
pointer*, unique in the chunk and at or above :data:`PROVISIONAL_BASE` (far above any file
offset, so one is never taken for the other). The chunk's data is handed over in
:class:`Piece` objects of about a page, cut at sample boundaries. The writer's collecting thread
takes the chunks (:class:`Job`) in order, places each piece's data in pages
(``MemoryAllocator.store_samples``) and swaps the provisional pointers in the metadata for
the final ones. :class:`Flow` is what the threads share during one write; it keeps the data
waiting behind a slower chunk in memory up to a budget, and beyond it in unnamed temporary
files next to the output.
"""
import array
import collections
import errno
import os
import queue
import tempfile
import threading

import numpy as np

from .errors import output_write_errors
from .memory_allocator import checked_size, pwrite_all

__all__ = ['PROVISIONAL_BASE', 'MIN_STAGING_BUDGET', 'Piece', 'Staging', 'Job', 'Flow']

# Pointers handed out while a chunk is encoded ahead of its placement: far above any real
# file offset, so that one is never taken for the other.
PROVISIONAL_BASE = 1 << 62
# Encoded data of chunks waiting for their turn is kept in memory up to
# max(this, 2 * num_workers * page_size) bytes, and beyond it in temporary files.
MIN_STAGING_BUDGET = 64 << 20


class Piece:
    """The data of the samples in rows ``lo`` to ``hi`` of a chunk, encoded and waiting to be
    placed. Its allocations follow each other from provisional pointer ``start`` to ``end``,
    each taking ``max(size, 1)`` bytes (``sizes``); per sample that allocated, its row
    (``rows``) and how many allocations it made (``counts``), in order. The bytes are in
    ``blocks`` (``(provisional pointer, array)``, which may run past the piece), or in an
    unnamed temporary file (``spill``) while memory is short.
    """

    __slots__ = ('lo', 'hi', 'start', 'end', 'rows', 'counts', 'sizes', 'blocks', 'spill')

    def __init__(self, lo, start):
        self.lo = self.hi = lo
        self.start = self.end = start
        # int64 arrays that grow as samples are encoded (read without a copy by numpy)
        self.rows, self.counts, self.sizes = array.array('q'), array.array('q'), array.array('q')
        self.blocks = []
        self.spill = None

    @property
    def nbytes(self):
        return self.end - self.start

    def segments(self):
        """The bytes from ``start`` to ``end``, as ``(offset from start, array)`` segments."""
        out = []
        for k, (pointer, block) in enumerate(self.blocks):
            # a block is used up to where the next one starts
            limit = self.blocks[k + 1][0] if k + 1 < len(self.blocks) else self.end
            lo, hi = max(pointer, self.start), min(pointer + block.size, limit, self.end)
            if lo < hi:
                out.append((lo - self.start, block[lo - pointer:hi - pointer]))
        return out

    def spill_to(self, directory, path):
        """Move the bytes into an unnamed temporary file in ``directory``."""
        with output_write_errors(path):
            spill = tempfile.TemporaryFile(dir=directory)
        try:
            for offset, data in self.segments():
                pwrite_all(spill.fileno(), data, offset, path=path)
        except BaseException:
            spill.close()
            raise
        self.spill, self.blocks = spill, None

    def take_segments(self, path):
        """The bytes as segments (read back, and the file closed, for a spilled piece)."""
        if self.spill is None:
            return self.segments()
        data = np.empty(self.nbytes, dtype=np.uint8)
        done = 0
        with output_write_errors(path):
            while done < self.nbytes:
                read = os.preadv(self.spill.fileno(), [data[done:]], done)
                if read <= 0:
                    raise OSError(errno.EIO, f"the temporary file of a piece ended after {done} bytes")
                done += read
        self.close()
        return [(0, data)]

    def close(self):
        if self.spill is not None:
            self.spill.close()
            self.spill = None


class Staging:
    """Takes the allocations of one chunk while its samples are encoded (the ``malloc`` of
    staged encoding): each gets zeroed space in a memory block and a provisional pointer,
    unique in the chunk, which the collecting thread later swaps for the final one.
    Allocations follow each other, as on a page (an empty one takes a byte)."""

    BLOCK_SIZE = 1 << 20

    def __init__(self, page_size):
        self.page_size = page_size
        self.next_pointer = PROVISIONAL_BASE
        self.num_allocations = 0
        self.piece = Piece(0, self.next_pointer)
        self.block, self.block_start = None, 0
        self.row, self.sample_start, self.sample_first = 0, self.next_pointer, 0

    def begin_sample(self, row):
        self.row, self.sample_start, self.sample_first = row, self.next_pointer, len(self.piece.sizes)

    def malloc(self, size):
        size = checked_size(size, self.page_size)
        footprint = size or 1
        pointer = self.next_pointer
        at = pointer - self.block_start
        block = self.block
        if block is None or at + footprint > block.size:
            # a fresh block; the fields may still be writing into the earlier ones
            block = np.zeros(max(self.BLOCK_SIZE, footprint), dtype=np.uint8)
            self.block, self.block_start, at = block, pointer, 0
            self.piece.blocks.append((pointer, block))
        self.next_pointer = pointer + footprint
        self.piece.sizes.append(size)
        self.num_allocations += 1
        return pointer, block[at:at + size]

    def end_sample(self):
        count = len(self.piece.sizes) - self.sample_first
        if count:
            self.piece.rows.append(self.row)
            self.piece.counts.append(count)
        self.piece.end = self.next_pointer

    def drop_sample(self):
        """Forget the allocations of the sample being encoded (zeroing what it wrote); the
        next allocation starts a fresh block."""
        piece = self.piece
        del piece.sizes[self.sample_first:]
        piece.blocks = [(pointer, block) for pointer, block in piece.blocks if pointer < self.sample_start]
        for pointer, block in piece.blocks:
            if pointer + block.size > self.sample_start:
                block[self.sample_start - pointer:] = 0
        self.next_pointer = piece.end = self.sample_start
        self.block = None

    def cut(self, hi):
        """The piece of the samples up to row ``hi`` (excluded); a new piece starts there,
        in the same block."""
        piece = self.piece
        piece.hi = hi
        self.piece = Piece(hi, self.next_pointer)
        if self.block is not None:
            self.piece.blocks.append((self.block_start, self.block))
        self.sample_first = 0
        return piece


class Job:
    """One chunk of samples (``items``, the first being sample ``start``) on its way into the
    file: encoded ``staged`` (placed later by the collecting thread) or directly."""

    def __init__(self, seq, start, items, metadata_type, staged):
        self.seq, self.start, self.items, self.staged = seq, start, items, staged
        self.count = len(items)
        self.metadata = np.zeros(self.count, dtype=metadata_type)
        self.first_row = 0
        self.pieces = collections.deque()
        self.finished = False
        self.needs_direct = None
        self.stale = False
        self.future = None

    def restart_direct(self, row):
        """Encode the samples from ``row`` on again, with direct placement (the rows before it
        are placed)."""
        self.staged, self.first_row, self.needs_direct = False, row, None


class Flow:
    """What the collecting thread and the encoding threads share during one write.

    Pieces of the head chunk are placed as they come; those of later chunks wait in memory,
    up to ``budget`` bytes in all, and beyond it in unnamed temporary files next to the
    output, so that memory stays bounded whatever the chunks' sizes.
    """

    def __init__(self, budget, spill_dir, path):
        self.events = queue.SimpleQueue()
        self.cancel = threading.Event()
        self.head = 0              # the chunk being placed (written by the collecting thread)
        self.budget, self.spill_dir, self.path = budget, spill_dir, path
        self.handed = 0            # bytes handed over in memory (added by encoding threads)
        self.placed = 0            # of those, bytes placed or dropped (added by the collector)
        self._lock = threading.Lock()   # among encoding threads only

    def hand_over(self, job, piece):
        if not piece.rows:
            return
        with self._lock:
            spill = job.seq != self.head and self.handed - self.placed + piece.nbytes > self.budget
            if not spill:
                self.handed += piece.nbytes
        if spill:
            piece.spill_to(self.spill_dir, self.path)
        self.events.put(('piece', job, piece))

    def release_piece(self, piece):
        """``piece`` was placed or dropped: its memory no longer counts."""
        if piece.blocks is not None:
            self.placed += piece.nbytes
            piece.blocks = None
        piece.close()

    def release(self, job):
        while job.pieces:
            self.release_piece(job.pieces.popleft())
