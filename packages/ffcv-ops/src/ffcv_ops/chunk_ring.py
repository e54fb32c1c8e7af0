"""The chunks of the batches in flight, claimed by worker threads inside compiled code.

A :class:`ChunkRing` is made per epoch by the loader for a pipeline whose parallel part is one
compiled call per chunk (a crop decoder, with a flip fused into it:
``Pipeline.chunk_claimer``). The loader publishes each admitted batch's chunks
(:meth:`ChunkRing.publish`); worker threads call the claimer, which decodes chunk after chunk
without the GIL (``kernels/chunk_ring.py``) and comes back to Python once per batch it
finishes, or when there is nothing left, or when a chunk needs the Python path.
"""
import math
from typing import List, Sequence, Tuple

import numpy as np

from .kernels import chunk_ring as kernels
from .kernels.chunk_ring import FINISHED, IDLE, NEEDS_PYTHON

__all__ = ['ChunkRing', 'IDLE', 'FINISHED', 'NEEDS_PYTHON']


class ChunkRing:
    """Tasks (slot, lo, hi) for the batches in ``destinations``' slots.

    ``destinations``: per ring slot, the decoder's buffer (C-contiguous, ``batch_size``
    rows). Publishing is done by one thread at a time (the loader's lock); claiming by any
    number of threads at once."""

    def __init__(self, destinations: Sequence[np.ndarray], batch_size: int, chunk_size: int):
        slots = len(destinations)
        self.chunk_size = int(chunk_size)
        self.destinations = tuple(destinations)
        self.control = np.zeros(3, np.int64)
        self.tasks = np.zeros((slots * max(1, math.ceil(batch_size / chunk_size)), 3), np.int64)
        self.done = np.zeros(slots, np.int64)
        self.chunks = np.zeros(slots, np.int64)
        self.batch_indices = np.zeros((slots, batch_size), np.int64)
        self.published = 0

    def publish(self, slot: int, indices: np.ndarray, bounds: List[Tuple[int, int]]) -> None:
        """Make the chunks ``bounds`` of the batch ``indices`` (held in ``slot``) claimable.
        The slot's previous batch must be finished (every task of it done)."""
        n = indices.shape[0]
        self.batch_indices[slot, :n] = indices
        self.done[slot] = 0
        self.chunks[slot] = len(bounds)
        for lo, hi in bounds:
            entry = self.published % self.tasks.shape[0]
            self.tasks[entry] = (slot, lo, hi)
            self.published += 1
        kernels.publish(self.control, self.published)

    def has_work(self) -> bool:
        """Whether a published task is not claimed yet."""
        return self.control[kernels.CLAIMED] < self.control[kernels.PUBLISHED]

    def task(self, number: int) -> Tuple[int, int, int]:
        """(slot, lo, hi) of task ``number`` (claimed, not yet done)."""
        slot, lo, hi = self.tasks[number % self.tasks.shape[0]].tolist()
        return slot, lo, hi

    def chunk_done(self, slot: int) -> bool:
        """Count one chunk of ``slot``'s batch done outside the claimer; whether it was the last."""
        return bool(kernels.chunk_done(self.done, self.chunks, slot))

    def stop(self) -> None:
        """Claimers return ``IDLE`` from their next claim on."""
        kernels.stop(self.control)
