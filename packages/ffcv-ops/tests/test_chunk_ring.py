"""The chunk ring's bookkeeping and its atomics, raced by real threads (the decoding through
it is tested with the loader: ffcv-loader's tests/test_chunk_ring.py)."""
import threading

import numpy as np
from numba import njit

from ffcv_ops.chunk_ring import ChunkRing
from ffcv_ops.kernels.atomics import atomic_add
from ffcv_ops.kernels.chunk_ring import chunk_done, claim_task


@njit(nogil=True)
def claim_all(control, tasks, done, chunks, seen, finished):
    """Claim tasks until none is left; count each task seen and each batch finished."""
    while True:
        task = claim_task(control)
        if task < 0:
            return
        entry = task % tasks.shape[0]
        seen[task] += 1
        slot = tasks[entry, 0]
        if chunk_done(done, chunks, slot):
            finished[slot] += 1


@njit(nogil=True)
def add_many(values, count):
    for _ in range(count):
        atomic_add(values, 1, 1)


def run_threads(target, count):
    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_atomic_add_loses_nothing_between_threads():
    values = np.zeros(3, np.int64)
    run_threads(lambda: add_many(values, 500_000), 4)
    assert values.tolist() == [0, 2_000_000, 0]


def test_every_task_is_claimed_once_and_every_batch_finished_once():
    destinations = [np.zeros((100, 2, 2, 3), np.uint8) for _ in range(3)]
    ring = ChunkRing(destinations, batch_size=100, chunk_size=8)
    assert ring.tasks.shape[0] == 3 * 13 and not ring.has_work()
    seen = np.zeros(400, np.int64)
    finished = np.zeros(3, np.int64)
    published = 0
    for batch in range(6):                  # two rounds over the three slots
        slot = batch % 3
        n = 100 if batch < 5 else 37        # a partial last batch
        bounds = [(lo, min(lo + 8, n)) for lo in range(0, n, 8)]
        ring.publish(slot, np.arange(n) + 1000 * batch, bounds)
        published += len(bounds)
        assert ring.has_work()
        np.testing.assert_array_equal(ring.batch_indices[slot, :n], np.arange(n) + 1000 * batch)
        if slot == 2 or batch == 5:         # claimed by two threads at once, three batches at a time
            run_threads(lambda: claim_all(ring.control, ring.tasks, ring.done, ring.chunks, seen, finished), 2)
            assert not ring.has_work()
    assert seen[:published].tolist() == [1] * published and seen[published:].sum() == 0
    assert finished.tolist() == [2, 2, 2]
    assert ring.task(published - 1) == (2, 32, 37)


def test_a_chunk_done_outside_the_claimer_finishes_its_batch_once():
    ring = ChunkRing([np.zeros((10, 1), np.uint8)], batch_size=10, chunk_size=4)
    ring.publish(0, np.arange(10), [(0, 4), (4, 8), (8, 10)])
    assert [ring.chunk_done(0) for _ in range(3)] == [False, False, True]


def test_stop_ends_claiming():
    ring = ChunkRing([np.zeros((10, 1), np.uint8)], batch_size=10, chunk_size=4)
    ring.publish(0, np.arange(10), [(0, 4), (4, 8), (8, 10)])
    ring.stop()
    assert claim_task(ring.control) == -1 and ring.has_work()
