"""The batch scheduler: worker threads fill a ring of batch buffers ahead of the consumer.

Work is split into units of (batch, chunk): a chunk is ``chunk_size`` consecutive samples
(the smallest of the pipelines' :meth:`~ffcv_ops.Pipeline.chunk_size`) of a batch run
through every pipeline's parallel part. The worker that finishes a batch's last chunk runs
the pipelines' batch parts (torch operations, device copies) and hands the batch over.
Batches are admitted in order, at most ``batches_ahead + 1`` beyond the one the consumer
holds, each into the ring slot ``batch % (batches_ahead + 2)``: a slot is reused only after
the consumer has moved past its batch.

When the batches' only chunked pipeline is one compiled decoder call per chunk (a crop
decoder with its flip), the chunks go to a ``ffcv_ops.chunk_ring.ChunkRing`` instead of the
task queue: a worker thread publishes each admitted batch's chunks once its pages are read
and its slot's previous CUDA copy is done, and the worker threads claim them inside compiled
code, coming back to Python about once per batch (to join it), not once per chunk, so that
the Python they run, which holds the GIL, does not grow with the batch.
``FFCV_CHUNK_RING=0`` turns the ring off.

Worker threads reference only this object, never the iterator the user holds: when the
user drops the iterator (a ``break``), it is collected, which stops and joins the threads.
"""
import os
import threading
from collections import deque
from contextlib import nullcontext

import numpy as np
from ffcv_format.errors import FormatError, in_context
from ffcv_ops.chunk_ring import FINISHED, NEEDS_PYTHON, ChunkRing
from ffcv_ops.pipeline import FIRST_BUFFER_ROWS


def _raise_in_context(error, where):
    """Raise ``error`` saying ``where`` it happened: in the message of a ``FormatError`` (a
    damaged file: the message names file, output, sample), as a note on any other exception
    (raised as it is). Either way with the original traceback, from the worker thread."""
    located = in_context(error, where, rebuilt=(FormatError,))
    if located is error:
        raise error
    located.__suppress_context__ = True
    raise located.with_traceback(error.__traceback__)



class CudaPrefetch:
    """One CUDA stream per ring slot. A slot's device copies run on its stream after the
    consumer's stream is done with the batch the slot held before; the consumer's stream
    waits on the copy's event when it receives the batch (and on nothing else)."""

    def __init__(self, num_slots):
        import torch
        self.torch = torch
        self.streams = [torch.cuda.Stream() for _ in range(num_slots)]
        self.released = [None] * num_slots
        self.copied = [None] * num_slots

    def stream_for(self, slot):
        stream = self.streams[slot]
        if self.released[slot] is not None:
            stream.wait_event(self.released[slot])
        return self.torch.cuda.stream(stream)

    def record(self, slot):
        event = self.torch.cuda.Event()
        event.record(self.streams[slot])
        self.copied[slot] = event
        return event

    def host_ready(self, slot):
        """Wait until the slot's previous copies out of its (pinned) host buffers are done."""
        event = self.copied[slot]
        if event is not None:
            event.synchronize()

    def wait(self, event):
        self.torch.cuda.current_stream().wait_event(event)

    def consumer_done(self, slot):
        event = self.torch.cuda.Event()
        event.record(self.torch.cuda.current_stream())
        self.released[slot] = event


class EpochRun:
    def __init__(self, *, pipelines, slots, batches, memory, batch_pages, num_workers, batches_ahead,
                 seeds, storage_state, chunk_size, start_batch=0, cuda=None, name='ffcv-worker', where='loader'):
        self.where = where                      # what errors say first: the file, the epoch
        self.pipelines = pipelines
        # pipelines run per chunk by the worker threads; the others (scalar decoders alone:
        # ``Pipeline.whole_batch``) run once per batch, when its chunks are done
        self.chunked = tuple(p for p, pipeline in enumerate(pipelines) if not pipeline.whole_batch)
        self.per_batch = tuple(p for p, pipeline in enumerate(pipelines) if pipeline.whole_batch)
        self.slots = slots                      # list of per-pipeline buffer lists
        self.batches = batches                  # list of int64 index arrays
        self.memory = memory
        self.memory_waits = getattr(memory, 'waits', True)
        self.batch_pages = batch_pages          # callable: batch indices -> page array
        self.seeds = seeds                      # per pipeline, per op
        self.storage_state = storage_state
        self.chunk_size = chunk_size            # samples per unit of work
        self.batches_ahead = batches_ahead
        self.cuda = cuda
        # the condition's lock, taken directly where nothing waits or notifies (a plain lock's
        # `with` runs in C; the condition's goes through two Python calls, per chunk)
        self.mutex = threading.Lock()
        self.lock = threading.Condition(self.mutex)
        self.tasks = deque()
        self.next_admit = start_batch
        self.next_give = start_batch
        self.pending = {}                       # batch -> chunks left
        self.chunk_results = {}                 # batch -> per pipeline list of results
        self.tickets = {}
        self.ready = {}
        self.failed = {}                        # batch -> exception raised while making it
        self.halt_at = len(batches)             # no batch from here on is admitted
        self.error = None
        self.stopped = False
        self.threads = []
        # per ring slot, the chunked pipelines' runners with the slot's buffers bound
        self.runners = [[(p, pipelines[p].chunk_runner(slot[p], seeds[p], storage_state)) for p in self.chunked]
                        for slot in slots]
        self.ring, self.claim = self._chunk_ring()
        self.slot_batch = [-1] * len(slots)     # with a ring: the batch each slot holds
        # with a ring: batches admitted but not yet published, in order, and whether a worker
        # is publishing one (it waits for the batch's pages and its slot's CUDA copy first)
        self.unpublished = deque()
        self.publishing = False
        with self.mutex:
            self._admit()
        for i in range(num_workers):
            t = threading.Thread(target=self._work if self.ring is None else self._work_on_ring,
                                 name=f'{name}-{i}', daemon=True)
            t.start()
            self.threads.append(t)

    def _chunk_ring(self):
        """(ring, claim) when the worker threads can claim chunks inside compiled code
        (``ffcv_ops.chunk_ring``): one chunked pipeline whose parallel part is one compiled
        decoder call into C-contiguous buffers, and the environment variable
        ``FFCV_CHUNK_RING`` not ``0``. Else (None, None): a return to Python per chunk."""
        if len(self.chunked) != 1 or os.environ.get('FFCV_CHUNK_RING', '1').strip() == '0':
            return None, None
        p = self.chunked[0]
        claim = self.pipelines[p].chunk_claimer(self.seeds[p], self.storage_state)
        destinations = [slot[p][0] for slot in self.slots]
        if claim is None or not all(isinstance(d, np.ndarray) and d.flags.c_contiguous for d in destinations):
            return None, None
        return ChunkRing(destinations, destinations[0].shape[0], self.chunk_size), claim

    # ------------------------------------------------------------ producer side

    def _slot(self, b):
        return b % len(self.slots)

    def _admit(self):
        """Queue batches' chunks while ring slots allow (lock held)."""
        limit = self.next_give + self.batches_ahead
        while self.next_admit < self.halt_at and self.next_admit <= limit and not self.stopped:
            b = self.next_admit
            indices = self.batches[b]
            pages = self.batch_pages(indices)
            if not self.memory.can_prepare(pages) and self.next_admit > self.next_give:
                break  # wait for the consumer to release pages
            self.tickets[b] = self.memory.prepare(pages)
            n = len(indices)
            step = self.chunk_size
            bounds = [(lo, min(lo + step, n)) for lo in range(0, n, step)] or [(0, 0)]
            self.chunk_results[b] = ([[None] * len(bounds) for _ in self.pipelines], bounds)
            if self.ring is None:
                self.pending[b] = len(bounds)
                for c, bound in enumerate(bounds):
                    self.tasks.append((b, c, bound))
            else:   # the decoder writes its rows of the slot's buffer; a worker publishes
                self.chunk_results[b][0][self.chunked[0]] = [FIRST_BUFFER_ROWS] * len(bounds)
                self.unpublished.append((b, bounds))
            self.next_admit += 1
            self.lock.notify_all()

    def _work(self):
        while True:
            with self.mutex:
                while not self.tasks and not self.stopped:
                    self.lock.wait()
                if self.stopped:
                    return
                b, c, (lo, hi) = self.tasks.popleft()
                ticket = self.tickets[b]
                results, bounds = self.chunk_results[b]
            try:
                self._run_chunk(b, c, lo, hi, ticket, results, bounds)
            except BaseException as e:  # handed to the consumer when it asks for batch b
                self._fail(b, e)

    def _publish(self):
        """Publish the admitted batches' chunks to the ring, in order, each once its pages are
        read (the process cache: ``memory.wait``) and its slot's previous CUDA copy is done.
        Run by worker threads (never by the consumer: it must not wait on a copy), one at a
        time, outside the lock while waiting."""
        while True:
            with self.mutex:
                if self.publishing or not self.unpublished or self.stopped:
                    return
                b, bounds = self.unpublished[0]
                ticket = self.tickets[b]
                self.publishing = True
            s = self._slot(b)
            try:
                self._wait_for_pages(b, ticket)
                if self.cuda is not None:
                    self.cuda.host_ready(s)
            except BaseException as e:
                with self.mutex:
                    self._published(b)
                self._fail(b, e)
                continue
            with self.mutex:
                self._published(b)
                if b < self.halt_at and not self.stopped:
                    self.slot_batch[s] = b
                    self.ring.publish(s, self.batches[b], bounds)
                self.lock.notify_all()

    def _published(self, b):
        """Batch ``b`` leaves the unpublished ones (lock held); a failure meanwhile may have
        dropped it already (``_fail`` drops the batches from the failed one on)."""
        self.publishing = False
        if self.unpublished and self.unpublished[0][0] == b:
            self.unpublished.popleft()

    def _work_on_ring(self):
        """A worker thread's loop with a chunk ring: the claimer decodes chunks until it has
        finished a batch, found nothing to claim, or met a chunk for the Python path."""
        ring, claim = self.ring, self.claim
        while True:
            self._publish()
            try:
                what, value = claim(ring)
            except BaseException as e:   # not a chunk's problem (those come back as NEEDS_PYTHON)
                with self.mutex:
                    if self.error is None:
                        self.error = RuntimeError(f"{self.where}: a worker thread failed while claiming chunks: {e!r}")
                        self.error.__cause__ = e
                    self.lock.notify_all()
                return
            if what == FINISHED:
                self._ring_batch_done(value)
            elif what == NEEDS_PYTHON:
                slot, lo, hi = ring.task(value)
                b = self.slot_batch[slot]
                try:
                    self._run_runners(b, slot, lo // self.chunk_size, lo, hi, self.chunk_results[b][0])
                except BaseException as e:
                    self._fail(b, e)
                    continue
                if ring.chunk_done(slot):
                    self._ring_batch_done(slot)
            else:
                with self.mutex:
                    while not (self.stopped or ring.has_work() or (self.unpublished and not self.publishing)):
                        self.lock.wait()
                    if self.stopped:
                        return

    def _ring_batch_done(self, slot):
        """The batch in ``slot`` is decoded: release its pages, admit more, join it."""
        b = self.slot_batch[slot]
        with self.mutex:
            if b in self.failed:
                return
            self.memory.release(self.tickets.pop(b))
            self._admit()
            results, bounds = self.chunk_results[b]
        try:
            self._hand_over(b, slot, results, bounds)
        except BaseException as e:
            self._fail(b, e)

    def _fail(self, b, error):
        """Batch ``b`` failed with ``error``: it is raised when the consumer asks for ``b``."""
        with self.mutex:
            self.failed.setdefault(b, error)
            # nothing after the failed batch will be asked for
            self.tasks = deque(t for t in self.tasks if t[0] < b)
            self.unpublished = deque(u for u in self.unpublished if u[0] < b)
            self.halt_at = min(self.halt_at, b)
            self.lock.notify_all()

    def _run_chunk(self, b, c, lo, hi, ticket, results, bounds):
        self._wait_for_pages(b, ticket)
        s = self._slot(b)
        if self.cuda is not None:
            self.cuda.host_ready(s)
        if hi > lo:
            self._run_runners(b, s, c, lo, hi, results)
        with self.mutex:
            if b in self.failed:
                return
            self.pending[b] -= 1
            last = self.pending[b] == 0
            if last:   # decoded: the batch's pages are no longer needed
                del self.pending[b]
                self.memory.release(self.tickets.pop(b))
                self._admit()
        if last:
            self._hand_over(b, s, results, bounds)

    def _wait_for_pages(self, b, ticket):
        """Wait until batch ``b``'s pages (``ticket``) are read, where the memory manager reads them."""
        if self.memory_waits:
            try:
                self.memory.wait(ticket)
            except Exception as e:
                _raise_in_context(e, f"{self.where}, batch {b}: reading its pages")

    def _run_runners(self, b, s, c, lo, hi, results):
        """The chunked pipelines' runners of slot ``s`` on chunk ``c`` of batch ``b`` (its
        samples ``lo:hi``), each result in ``results[pipeline][c]``."""
        indices = self.batches[b]
        p = 0
        try:
            for p, run in self.runners[s]:
                results[p][c] = run(indices, lo, hi)
        except Exception as e:
            _raise_in_context(e, self._where(b, self.pipelines[p], indices[lo:hi]))

    def _hand_over(self, b, s, results, bounds):
        """Join decoded batch ``b`` (in slot ``s``: its pages released already) and make it ready."""
        outputs = self._finish(b, self.slots[s], self.batches[b], results, bounds)
        with self.mutex:
            del self.chunk_results[b]
            self.ready[b] = outputs
            self.lock.notify_all()

    def _finish(self, b, slot, indices, results, bounds):
        """The batch parts of every pipeline (on the slot's stream with CUDA), and the
        event the consumer waits on (None without CUDA)."""
        context = self.cuda.stream_for(self._slot(b)) if self.cuda is not None else nullcontext()
        outputs = []
        n = len(indices)
        with context:
            for p, pipeline in enumerate(self.pipelines):
                try:
                    if p in self.per_batch and n:
                        whole = [pipeline.run_chunk(slot[p], indices, 0, n, self.seeds[p], self.storage_state)]
                        outputs.append(pipeline.finish_batch(slot[p], indices, whole, [(0, n)], self.seeds[p]))
                    else:
                        outputs.append(pipeline.finish_batch(slot[p], indices, results[p], bounds, self.seeds[p]))
                except Exception as e:
                    _raise_in_context(e, self._where(b, pipeline, indices))
            event = self.cuda.record(self._slot(b)) if self.cuda is not None else None
        return outputs, event

    def _where(self, b, pipeline, ids):
        """Where a batch's problem happened, for its error message."""
        shown = ', '.join(str(int(i)) for i in ids[:8]) + (f", ... ({len(ids)} samples)" if len(ids) > 8 else '')
        return (f"{self.where}, batch {b}, output {pipeline.name!r} (field {pipeline.source!r}), "
                f"samples [{shown}]")

    # ------------------------------------------------------------ consumer side

    def next(self):
        """The next batch's outputs (waits for it), or StopIteration at the end."""
        with self.mutex:
            b = self.next_give
            if b >= len(self.batches):
                raise StopIteration
            while b not in self.ready and b not in self.failed and self.error is None:
                self.lock.wait(timeout=1.0)
                if self.error is None and not any(t.is_alive() for t in self.threads):
                    self.error = RuntimeError("the loader's worker threads stopped unexpectedly")
            if self.error is not None or b in self.failed:
                error = self.failed.get(b, self.error)
                self.stopped = True
                self.lock.notify_all()
                raise error
            outputs, event = self.ready.pop(b)
            if self.cuda is not None and b > 0:
                self.cuda.consumer_done(self._slot(b - 1))
            self.next_give = b + 1
            self._admit()
        if event is not None:
            self.cuda.wait(event)
        return outputs

    def close(self):
        with self.mutex:
            self.stopped = True
            self.tasks.clear()
            if self.ring is not None:
                self.ring.stop()
            self.lock.notify_all()
        current = threading.current_thread()
        for t in self.threads:
            if t is not current:
                t.join()
        self.threads = []
        for b, ticket in list(self.tickets.items()):
            try:
                self.memory.wait(ticket)
            except BaseException:
                pass
            self.memory.release(ticket)
        self.tickets.clear()
        self.ready.clear()
        self.chunk_results.clear()
