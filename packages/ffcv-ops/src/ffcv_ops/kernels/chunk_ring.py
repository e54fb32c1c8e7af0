"""Worker threads that claim chunks inside compiled code: the kernels of ``ffcv_ops.chunk_ring``.

The chunks of the batches in flight are tasks in a ring (``tasks[t % len(tasks)]`` = slot, lo,
hi); ``control`` holds how many tasks were published and how many claimed. A worker thread in
:func:`claim_and_decode` claims the next task with a compare-and-swap, decodes the chunk
(``image_chunks.decode_chunk``) into its batch's slot, counts it done, and goes on to the next
task, of the same batch or the next, without returning to Python. It returns only when there
is nothing to claim, when it finished a batch's last chunk (its batch is then joined in Python),
or when a chunk needs Python (an image the kernel leaves out, a metadata problem to name, a
workspace to grow): one return to Python per batch rather than one per chunk.
"""
from numba import njit

from .atomics import atomic_add, atomic_load, atomic_store, compare_and_swap
from .image_chunks import decode_chunk

#: positions in ``control``
PUBLISHED, CLAIMED, STOP = 0, 1, 2
#: what :func:`claim_and_decode` returns, with a value
IDLE = 0          # nothing to claim (or told to stop); value -1
FINISHED = 1      # the thread did the last chunk of the batch in slot ``value``
NEEDS_PYTHON = 2  # task number ``value`` is claimed but not done: the caller runs it


@njit(nogil=True, cache=True)
def claim_task(control):
    """The number of the task claimed, or -1 when every published task is claimed or
    ``control[STOP]`` is set."""
    while True:
        if atomic_load(control, STOP) != 0:
            return -1
        claimed = atomic_load(control, CLAIMED)
        if claimed >= atomic_load(control, PUBLISHED):
            return -1
        if compare_and_swap(control, CLAIMED, claimed, claimed + 1):
            return claimed


@njit(nogil=True, cache=True)
def chunk_done(done, chunks, slot):
    """Count one chunk of the batch in ``slot`` done; whether it was its last."""
    return atomic_add(done, slot, 1) + 1 == chunks[slot]


@njit(nogil=True, cache=True)
def publish(control, count):
    """Make tasks up to number ``count`` (excluded) claimable: called after they are written."""
    atomic_store(control, PUBLISHED, count)


@njit(nogil=True, cache=True)
def stop(control):
    atomic_store(control, STOP, 1)


@njit(nogil=True, cache=True)
def claim_and_decode(control, tasks, done, chunks, batch_indices, destinations, workspace, columns, state, channels,
                     box_kind, box_parameters, seed, max_denom, boxes, status, flip_prob, flip_seed):
    """Claim and decode chunks until one of the returns above: ``(what, value)``.

    ``destinations``: the decoder's buffer of each slot (a tuple of C-contiguous arrays);
    ``batch_indices[slot, :n]``: the sample indices of the slot's batch; ``boxes`` and
    ``status``: this thread's, at least a chunk long. The other arguments are
    ``decode_chunk``'s."""
    while True:
        task = claim_task(control)
        if task < 0:
            return IDLE, -1
        entry = task % tasks.shape[0]
        slot, lo, hi = tasks[entry, 0], tasks[entry, 1], tasks[entry, 2]
        n = hi - lo
        if n > 0:
            row, code, needed, left_out = decode_chunk(workspace, columns, batch_indices[slot, lo:hi], state,
                                                       channels, box_kind, box_parameters, seed, max_denom,
                                                       boxes[:n], destinations[slot][lo:hi], status[:n], flip_prob,
                                                       flip_seed)
            if code != 0 or needed != 0 or left_out != 0:
                return NEEDS_PYTHON, task
        if chunk_done(done, chunks, slot):
            return FINISHED, slot
