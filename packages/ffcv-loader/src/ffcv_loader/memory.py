"""Memory managers: where the bytes of the samples come from while loading.

- ``OSCacheManager`` (``os_cache=True``): the file is memory-mapped; the operating system's
  page cache keeps what fits in RAM, shared by every process reading the file.
- ``ProcessCacheManager`` (``os_cache=False``): the loader reads the file's pages itself,
  ahead of the batches that need them, with a pool of reader threads, into a bounded pool
  of page slots of its own (least recently used pages are evicted). Useful on network or
  slow file systems where the OS page cache does not help, and for datasets larger than
  RAM (memory stays bounded by ``limit_bytes``).

A file on object storage (a URL; ``ffcv_format.remote``) is paged by range requests:

- without a cache directory, always by ``ProcessCacheManager`` (whatever ``os_cache`` says):
  there is no local file for the OS to cache;
- with a cache directory (``ffcv_format.page_cache``: pages downloaded once per machine into
  a local sparse copy shared by its processes), ``os_cache=True`` gives
  ``MappedPageCacheManager``, which reads the memory-mapped copy (the OS page cache holds it,
  shared by the processes), and ``os_cache=False`` the ``ProcessCacheManager``, which reads
  the pages from the copy into its own slots.

Pages are fetched when the scheduler admits a batch, ``batches_ahead`` batches before it is
decoded, in the order the batches come, by a pool of I/O threads (many requests in flight).

All expose ``storage_state`` (see ``ffcv_ops.storage``) to the decoders, and
``prepare(pages)``/``wait(ticket)``/``release(ticket)`` to the scheduler. FFCV 1.0's API is
there too, for code that drives a memory manager itself: ``schedule_epoch(batches)`` gives a
:class:`MemoryContext` (``with context:``, ``context.start_batch(b)``, ``context.state``) and
``compile_reader()`` the function compiled code reads an allocation with,
``read(ptr, context.state)``.
"""
import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

import numpy as np
from ffcv_format.storage import make_storage_state
from ffcv_ops.storage import memory_read


def sample_pages(reader, field_names):
    """A ``(num_samples, k)`` int64 array: the pages holding each sample's data, for the
    pointer columns of the given fields (``Reader.sample_pages``)."""
    return reader.sample_pages(field_names)


class MemoryContext(AbstractContextManager):
    """The memory of one epoch's batches (FFCV 1.0's ``MemoryContext``), from
    ``manager.schedule_epoch(batches)``.

    ``with context:`` holds it; ``context.start_batch(b)`` returns once the data of batch
    ``b`` (of the batches given) is resident (and lets the pages of earlier batches go);
    ``context.state`` is what ``manager.compile_reader()``'s function and the decoders read.
    """

    def __init__(self, manager, batches):
        self.manager = manager
        self.batches = batches
        self._tickets = {}

    @property
    def state(self):
        return self.manager.storage_state

    def __enter__(self):
        return self

    def start_batch(self, batch):
        for earlier in [b for b in self._tickets if b < batch]:
            self.manager.release(self._tickets.pop(earlier))
        if batch not in self._tickets:
            ids = np.atleast_1d(np.asarray(self.batches[batch], dtype=np.int64))
            self._tickets[batch] = self.manager.prepare(self.manager.pages_of(ids))
        self.manager.wait(self._tickets[batch])

    def __exit__(self, *exc):
        for ticket in self._tickets.values():
            self.manager.release(ticket)
        self._tickets.clear()
        return None


class MemoryManager(ABC):
    """Where the bytes of the samples come from (FFCV 1.0's base class).

    ``storage_state`` is read by decoders; the scheduler calls ``prepare(pages) -> ticket``,
    ``wait(ticket)``, ``release(ticket)``, ``can_prepare(pages)``. ``ptrs``/``sizes`` are the
    allocation table sorted by pointer; ``sample_to_pages``/``page_to_samples`` (FFCV 1.0's
    dicts of sets, built on first use: costly for big files) map samples to the pages holding
    their data.
    """

    def __init__(self, reader):
        self.reader = reader
        allocations = reader.allocations()
        self.ptrs, self.sizes = allocations.ptr, allocations.size
        self._page_maps = None
        self._sample_pages = None

    def schedule_epoch(self, batches):
        """A :class:`MemoryContext` for ``batches`` (a sequence of arrays of sample ids)."""
        return MemoryContext(self, batches)

    def compile_reader(self):
        """``read(ptr, state)``: the allocation starting at file offset ``ptr`` (compiled; it
        runs in numba code and in Python)."""
        return memory_read

    def pages_of(self, sample_ids):
        """The pages holding the data of ``sample_ids`` (every field), without repeats."""
        if self._sample_pages is None:
            self._sample_pages = sample_pages(self.reader, self.reader.field_names)
        pages = self._sample_pages[sample_ids]
        return np.unique(pages[pages >= 0])

    @property
    def sample_to_pages(self):
        return self._maps()[0]

    @property
    def page_to_samples(self):
        return self._maps()[1]

    def _maps(self):
        if self._page_maps is None:
            table = self.reader.alloc_table
            pages = table['ptr'] // np.uint64(self.reader.page_size)
            to_pages, to_samples = defaultdict(set), defaultdict(set)
            for sample, page in zip(table['sample_id'].tolist(), pages.tolist()):
                to_pages[sample].add(page)
                to_samples[page].add(sample)
            self._page_maps = (to_pages, to_samples)
        return self._page_maps

    #: whether ``wait(ticket)`` may have to wait (False: the scheduler skips the call)
    waits = True

    @abstractmethod
    def prepare(self, pages):
        ...

    @abstractmethod
    def can_prepare(self, pages):
        ...

    @abstractmethod
    def wait(self, ticket):
        ...

    @abstractmethod
    def release(self, ticket):
        ...

    def close(self):
        pass


class OSCacheManager(MemoryManager):
    """Reads through the memory map (the OS page cache)."""

    #: ``wait`` has nothing to wait for: the scheduler need not call it
    waits = False

    def __init__(self, reader):
        super().__init__(reader)
        self.storage_state = reader.storage_state()

    def prepare(self, pages):
        return None

    def can_prepare(self, pages):
        return True

    def wait(self, ticket):
        pass

    def release(self, ticket):
        pass

    def pages_of(self, sample_ids):
        return _NO_PAGES   # nothing to make resident: the OS pages the map in

    @property
    def resident_bytes(self):
        return 0


class MappedPageCacheManager(MemoryManager):
    """``os_cache=True`` for a remote file with a cache directory: the decoders read the
    memory map of the machine's copy of the file (``reader.page_cache``), so the OS page cache
    holds its pages, shared by the processes reading it. Pages missing from the copy are
    downloaded ahead of the batches that need them by ``io_threads`` threads, once per machine;
    pages present stay resident (nothing is evicted: the copy is on disk)."""

    def __init__(self, reader, io_threads=16):
        super().__init__(reader)
        self.cache = reader.page_cache
        self.page_size = ps = reader.page_size
        self.num_pages = self.cache.num_pages
        present = self.cache.present_pages()
        offsets = np.where(present, np.arange(self.num_pages, dtype=np.int64) * ps, -1)
        self.storage_state = make_storage_state(self.cache.mapping(), offsets, ps, reader.allocations(),
                                                reader.data_region)
        # where each page starts in the mapping (-1: not yet present); the decoders read this array
        self.page_offsets = self.storage_state[1]
        self._lock = threading.Lock()
        self._fetching = {}               # page -> future
        self._pool = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix='ffcv-page-fetcher')
        self._closed = False

    def prepare(self, pages):
        """Start fetching the pages of ``pages`` not yet present; the ticket is their futures."""
        futures = []
        with self._lock:
            for p in _pages_in_file(pages, self.num_pages):
                if self.page_offsets[p] >= 0:
                    continue
                future = self._fetching.get(p)
                if future is None:
                    future = self._fetching[p] = self._pool.submit(self._fetch, p)
                futures.append(future)
        return futures

    def _fetch(self, page):
        try:
            self.cache.ensure(page)
            self.page_offsets[page] = page * self.page_size
        finally:
            with self._lock:      # a failed fetch is tried again by the next batch needing the page
                self._fetching.pop(page, None)

    def can_prepare(self, pages):
        return True

    def wait(self, ticket):
        for future in ticket:
            future.result()

    def release(self, ticket):
        pass

    @property
    def resident_bytes(self):
        return 0    # the OS page cache holds them, not this process

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def remote_memory_manager(reader, os_cache, process_cache_limit=None):
    """The memory manager of a remote file (see the module's docstring): with a cache directory
    and ``os_cache``, :class:`MappedPageCacheManager`; otherwise :class:`ProcessCacheManager`."""
    if os_cache and reader.page_cache is not None:
        return MappedPageCacheManager(reader)
    return ProcessCacheManager(reader, process_cache_limit)


def _pages_in_file(pages, num_pages):
    """The pages of ``pages`` that exist: a damaged pointer may name a page past the end of
    the file; the decoder reading it reports the sample (``ffcv_ops.storage``)."""
    return [int(p) for p in pages if 0 <= p < num_pages]


class _Ticket:
    __slots__ = ('pages', 'futures')

    def __init__(self, pages, futures):
        self.pages, self.futures = pages, futures


_NO_PAGES = np.zeros(0, dtype=np.int64)


class ProcessCacheManager(MemoryManager):
    """Reads pages ahead into a bounded pool of page slots of its own.

    ``limit_bytes``: memory for cached pages (rounded down to whole pages; at least what the
    batches in flight need). ``io_threads``: concurrent reads (default 8 for a local file,
    16 for a remote one, whose pages come by range requests, through its cache directory
    when it has one).
    """

    def __init__(self, reader, limit_bytes=None, io_threads=None):
        super().__init__(reader)
        self.page_size = ps = reader.page_size
        self.num_pages = -(-reader.file_size // ps)
        if limit_bytes is None:
            limit_bytes = min(self.num_pages * ps, _default_limit())
        self.num_slots = max(1, min(self.num_pages, int(limit_bytes) // ps))
        self.arena = np.empty(self.num_slots * ps, dtype=np.uint8)  # untouched slots cost no RSS
        self.storage_state = make_storage_state(self.arena, np.full(self.num_pages, -1, dtype=np.int64),
                                                ps, reader.allocations(), reader.data_region)
        # where each page lives in the arena (-1: not resident); the decoders read this array
        self.page_offsets = self.storage_state[1]
        self._lock = threading.Lock()
        self._slot_of = {}                # page -> slot (resident or loading)
        self._refs = {}                   # page -> number of tickets holding it
        self._loading = {}                # page -> future
        self._lru = OrderedDict()         # resident pages nobody holds, oldest first
        self._free = list(range(self.num_slots - 1, -1, -1))
        self._fd = None
        if reader.page_cache is not None:
            self._read_page = self._read_cached_page
        elif reader.remote is not None:
            self._read_page = self._read_remote_page
        else:
            self._fd = os.open(reader.file_name, os.O_RDONLY)
            self._read_page = self._read_local_page
        if io_threads is None:
            io_threads = 8 if reader.remote is None else 16
        self._pool = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix='ffcv-page-reader')
        self._closed = False

    def _in_file(self, pages):
        return _pages_in_file(pages, self.num_pages)

    def can_prepare(self, pages):
        """Whether slots are available for ``pages`` without evicting a held page."""
        with self._lock:
            return self._fits(set(self._in_file(pages)))

    def _fits(self, wanted):
        missing = sum(1 for p in wanted if p not in self._slot_of)
        evictable = len(self._lru) - sum(1 for p in wanted if p in self._lru)
        return missing <= len(self._free) + evictable

    def prepare(self, pages):
        """Hold ``pages`` (an array of page indices) and start reading the missing ones."""
        pages = self._in_file(pages)
        futures = []
        with self._lock:
            if not self._fits(set(pages)):
                raise MemoryError(
                    f"the process cache holds {self.num_slots} pages of {self.page_size} bytes; "
                    f"a batch needs {len(pages)} pages: raise its limit or lower batch_size/batches_ahead")
            for p in pages:
                self._refs[p] = self._refs.get(p, 0) + 1
                if p in self._slot_of:
                    self._lru.pop(p, None)
                    if p in self._loading:
                        futures.append(self._loading[p])
                    continue
                if self._free:
                    slot = self._free.pop()
                else:
                    old, _ = self._lru.popitem(last=False)
                    slot = self._slot_of.pop(old)
                    self.page_offsets[old] = -1
                self._slot_of[p] = slot
                future = self._pool.submit(self._load, p, slot)
                self._loading[p] = future
                futures.append(future)
        return _Ticket(pages, futures)

    def _load(self, page, slot):
        ps = self.page_size
        view = memoryview(self.arena[slot * ps:(slot + 1) * ps])
        offset = page * ps
        length = min(ps, self.reader.file_size - offset)
        try:
            self._read_page(page, view[:length], offset)
        except BaseException:
            with self._lock:    # the slot is freed: the next batch needing the page reads it again
                self._loading.pop(page, None)
                if self._slot_of.get(page) == slot:
                    del self._slot_of[page]
                    self._free.append(slot)
            raise
        with self._lock:
            self.page_offsets[page] = slot * ps
            self._loading.pop(page, None)
            if page not in self._refs:      # released while it was being read
                self._lru[page] = None

    def _read_local_page(self, page, view, offset):
        done, length = 0, len(view)
        while done < length:
            n = os.preadv(self._fd, [view[done:length]], offset + done)
            if n <= 0:
                raise OSError(f"{self.reader.file_name}: could not read page {page} (file truncated?)")
            done += n

    def _read_remote_page(self, page, view, offset):
        self.reader.remote.read_into(view, offset)

    def _read_cached_page(self, page, view, offset):
        self.reader.page_cache.read_into(page, view)

    def wait(self, ticket):
        for future in ticket.futures:
            future.result()

    def release(self, ticket):
        with self._lock:
            for p in ticket.pages:
                left = self._refs[p] - 1
                if left:
                    self._refs[p] = left
                else:
                    del self._refs[p]
                    # a page still being read joins the LRU list when its read finishes
                    if p in self._slot_of and p not in self._loading:
                        self._lru[p] = None

    @property
    def resident_bytes(self):
        with self._lock:
            return len(self._slot_of) * self.page_size

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._fd is not None:
            os.close(self._fd)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def available_memory():
    """Bytes of memory available now (MemAvailable), or None when it cannot be told."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _default_limit():
    """Half of the memory available now (or 4 GiB when it cannot be told)."""
    available = available_memory()
    return 4 << 30 if available is None else available // 2
