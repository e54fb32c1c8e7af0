"""The conversion pipeline: many reads in flight, encoding on all cores, results in order.

Jobs (source items) run on two thread pools: ``read`` (I/O: an object from a remote
store, many at once) and ``prepare`` (CPU: decode, resize, compress; one thread per
core, OpenCV releasing the GIL). The consumer (the writer, on the calling thread) takes
results in source order from a window of jobs kept in flight ahead of it, so the pools
run ahead of the writer and the writer only copies finished bytes.

Remote reads go one per task on the read pool, each followed by its prepare task.
Local reads (and items already read, from streams) are cheap next to decoding, so they
run in the prepare task itself, several jobs per task: fewer thread handoffs per item,
which on few cores is what keeps the workers busy.
"""
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

#: jobs per prepare task when reads are local
BATCH = 8


class Job:
    """One source item: its ``position`` in the source, its ``part``, and how to get it.

    Either ``read`` (a function returning the record) or ``record`` (already read) is set.
    """

    __slots__ = ('position', 'part', 'where', 'read', 'record')

    def __init__(self, position, part, where=None, read=None, record=None):
        self.position, self.part, self.where, self.read, self.record = position, part, where, read, record


class PartEnd:
    """Marks the end of a part in the job stream."""

    __slots__ = ('part',)

    def __init__(self, part):
        self.part = part


class Pipeline:
    """Runs ``prepare(job, record)`` for the jobs of ``jobs`` (an iterator of Job and PartEnd).

    ``next()`` gives, in order, ``PartEnd`` markers and ``(job, ok, value)`` triples: the
    prepared sample (``ok`` true) or the exception raised while reading or preparing.
    ``remote_reads`` sends each read to the read pool on its own.
    """

    def __init__(self, jobs, prepare, read_workers, prepare_workers, window, remote_reads=False):
        self.jobs = iter(jobs)
        self.prepare = prepare
        self.window = max(1, int(window))
        self.remote_reads = remote_reads
        self.cancelled = threading.Event()
        self.read_pool = ThreadPoolExecutor(max(1, read_workers), thread_name_prefix='ffcv-read') \
            if remote_reads else None
        self.prepare_pool = ThreadPoolExecutor(max(1, prepare_workers), thread_name_prefix='ffcv-prepare')
        self.batches = deque()       # (jobs, future of [(ok, value), ...]) or PartEnd
        self.results = deque()       # (job, ok, value) of the batch being handed out
        self.in_flight = 0
        self.pending = None          # a PartEnd read from the stream while filling a batch
        self.exhausted = False

    # -------------------------------------------------------------- workers

    def _outcome(self, job, record):
        try:
            return True, self.prepare(job, record)
        except Exception as e:
            return False, e

    def _run_batch(self, jobs):
        outcomes = []
        for job in jobs:
            if self.cancelled.is_set():
                return None  # closing: nobody waits for this result any more
            if job.read is None:
                outcomes.append(self._outcome(job, job.record))
                continue
            try:
                record = job.read()
            except Exception as e:
                outcomes.append((False, e))
                continue
            outcomes.append(self._outcome(job, record))
        return outcomes

    def _run_read(self, job, future):
        if self.cancelled.is_set():
            return
        try:
            record = job.read()
        except Exception as e:
            future.set_result([(False, e)])
            return
        try:
            self.prepare_pool.submit(self._run_prepare, job, record, future)
        except RuntimeError as e:  # shut down while this read ran
            future.set_result([(False, e)])

    def _run_prepare(self, job, record, future):
        if self.cancelled.is_set():
            return
        future.set_result([self._outcome(job, record)])

    # -------------------------------------------------------------- filling

    def _next_item(self):
        if self.pending is not None:
            item, self.pending = self.pending, None
            return item
        try:
            return next(self.jobs)
        except StopIteration:
            self.exhausted = True
            return None

    def _fill(self):
        while not self.exhausted and self.in_flight < self.window:
            item = self._next_item()
            if item is None:
                return
            if isinstance(item, PartEnd):
                self.batches.append(item)
                continue
            if self.remote_reads and item.read is not None:
                future = Future()
                self.read_pool.submit(self._run_read, item, future)
                self.batches.append(([item], future))
                self.in_flight += 1
                continue
            batch = [item]
            while len(batch) < BATCH:
                item = self._next_item()
                if item is None:
                    break
                if isinstance(item, PartEnd) or (self.remote_reads and item.read is not None):
                    self.pending = item
                    break
                batch.append(item)
            self.batches.append((batch, self.prepare_pool.submit(self._run_batch, batch)))
            self.in_flight += len(batch)

    # -------------------------------------------------------------- consuming

    def _head(self, take):
        while not self.results:
            self._fill()
            if not self.batches:
                return None
            entry = self.batches[0]
            if isinstance(entry, PartEnd):
                if take:
                    self.batches.popleft()
                return entry
            self.batches.popleft()
            jobs, future = entry
            outcomes = future.result()
            self.in_flight -= len(jobs)
            self.results.extend((job, ok, value) for job, (ok, value) in zip(jobs, outcomes))
        return self.results.popleft() if take else self.results[0]

    def peek(self):
        """The next entry without taking it (None when the stream is over)."""
        return self._head(take=False)

    def next(self):
        """The next entry (None when the stream is over)."""
        return self._head(take=True)

    def close(self):
        """Stop: queued work is dropped, work under way finishes in the background."""
        self.cancelled.set()
        for pool in (self.read_pool, self.prepare_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        close = getattr(self.jobs, 'close', None)
        if close is not None:
            close()
