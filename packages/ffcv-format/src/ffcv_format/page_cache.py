"""A node's on-disk copy of a remote `.beton` file, filled page by page and shared by the
processes of the node (the ranks of a training job, the workers of several jobs), so that no
page is downloaded twice.

Layout: ``CACHE_DIR/NAME-KEY/`` for each remote file, ``NAME`` its file name and ``KEY`` a hash
of its URL, size and version (ETag, version id or modification time: a new upload of the
object gets a new folder), holding

- ``data``: a sparse file as long as the remote file; page ``p`` is written at its own offset,
  ``p * page_size``, so the file can be memory-mapped like a local copy;
- ``pages``: one byte per page, 1 once the page is in ``data``, written after the page's
  bytes are synced to disk;
- ``source.json``: the URL, size, version and page size, for people.

Only downloaded pages take disk space; nothing is ever evicted (remove the folder to free it).

A page is downloaded by one process. A process wanting a page not yet marked takes an
exclusive lock (``fcntl``) on the page's byte of ``pages``, reads the byte again (another
process may have downloaded it meanwhile), downloads the page, writes and syncs it, sets the
byte and unlocks. Others wanting the page wait on the lock, then find the byte set. A process
killed while downloading leaves the byte unset and its lock goes with it: the next process
downloads the page again. Threads of one process are serialised per page by a thread lock
(``fcntl`` locks belong to a process); a process opens each cache folder once
(:meth:`PageCache.shared`), since closing any descriptor of a file drops the process's locks
on it.
"""
import errno
import fcntl
import hashlib
import json
import mmap
import os
import re
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np

from .remote import RemoteFile

__all__ = ['PageCache', 'cache_folder_name']


def cache_folder_name(remote: RemoteFile) -> str:
    """The folder of ``remote``'s copy inside a cache directory: ``NAME-KEY``."""
    name = re.sub(r'[^A-Za-z0-9._-]', '_', remote.url.rstrip('/').rsplit('/', 1)[-1])[:64] or 'file'
    key = hashlib.sha256(f"{remote.url}\n{remote.size}\n{remote.version}".encode()).hexdigest()[:20]
    return f"{name}-{key}"


class PageCache:
    """The on-disk copy of ``remote`` in ``cache_dir`` (see the module's docstring), with pages
    of ``page_size`` bytes. Use :meth:`shared` to open it: one instance per folder and process.

    ``ensure(page)`` makes a page present (downloading it unless some process of the node has);
    ``read_into(page, view)`` copies it into memory; ``mapping()`` is the whole copy,
    memory-mapped (read only the pages made present); ``read(start, end)`` any byte range.
    """

    _instances = weakref.WeakValueDictionary()
    _instances_lock = threading.Lock()

    @classmethod
    def shared(cls, remote: RemoteFile, cache_dir, page_size: int) -> 'PageCache':
        """The process's instance for ``remote``'s folder in ``cache_dir`` (made on first use).
        Pages are then downloaded through ``remote``, the latest opener's (its credentials)."""
        directory = os.path.join(os.path.realpath(os.fspath(cache_dir)), cache_folder_name(remote))
        with cls._instances_lock:
            cache = cls._instances.get(directory)
            if cache is None or cache.page_size != page_size:
                cache = cls(remote, directory, page_size)
                cls._instances[directory] = cache
            cache.remote = remote
            return cache

    def __init__(self, remote: RemoteFile, directory: str, page_size: int):
        self.remote = remote
        self.directory = directory
        self.page_size = int(page_size)
        self.size = remote.size
        self.num_pages = -(-self.size // self.page_size)
        self._fds = []
        try:
            os.makedirs(directory, exist_ok=True)
            self._data_fd = self._open_sized('data', self.size)
            self._flags_fd = self._open_sized('pages', self.num_pages)
            self._describe()
        except OSError as e:
            self.close()
            raise OSError(e.errno or errno.EIO,
                          f"cache directory {directory!r} for {remote.url}: {e.strerror or e}") from e
        self._present = np.zeros(self.num_pages, dtype=bool)   # pages this process knows are present
        self._page_locks = {}
        self._mapping = None
        self._mapping_lock = threading.Lock()

    def _open_sized(self, name, size):
        path = os.path.join(self.directory, name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        self._fds.append(fd)
        found = os.fstat(fd).st_size
        if found < size:
            os.ftruncate(fd, size)      # sparse; extending never changes bytes already written
        elif found > size:
            raise OSError(errno.EEXIST, f"{path} has {found} bytes, more than the {size} expected "
                                        f"(not this file's cache?)")
        return fd

    def _describe(self):
        path = os.path.join(self.directory, 'source.json')
        if os.path.exists(path):
            return
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(temporary, 'w') as f:
            json.dump({'url': self.remote.url, 'size': self.size, 'version': self.remote.version,
                       'page_size': self.page_size}, f, indent=1)
        os.replace(temporary, path)

    # ------------------------------------------------------------ pages

    def page_range(self, page: int):
        """``(start, end)``: the bytes of the remote file page ``page`` holds (the last is shorter)."""
        start = page * self.page_size
        return start, min(start + self.page_size, self.size)

    def present_pages(self) -> np.ndarray:
        """A bool array: which pages are present now (downloaded by any process)."""
        flags = np.frombuffer(os.pread(self._flags_fd, self.num_pages, 0), dtype=np.uint8)
        present = np.zeros(self.num_pages, dtype=bool)
        present[:flags.size] = flags == 1
        self._present |= present
        return self._present.copy()

    def _marked(self, page):
        return os.pread(self._flags_fd, 1, page) == b'\x01'

    def ensure(self, page: int) -> Optional[bytes]:
        """Make ``page`` present. Returns its bytes when this call downloaded it (so that they
        need not be read back), else None."""
        page = int(page)
        if self._present[page]:
            return None
        lock = self._page_locks.get(page)
        if lock is None:
            lock = self._page_locks.setdefault(page, threading.Lock())
        with lock:
            if self._present[page]:
                return None
            if self._marked(page):
                self._present[page] = True
                return None
            self._lock_page(page)
            try:
                if self._marked(page):
                    data = None
                else:
                    start, end = self.page_range(page)
                    data = self.remote.read(start, end)
                    self._store(page, start, data)
            finally:
                fcntl.lockf(self._flags_fd, fcntl.LOCK_UN, 1, page, os.SEEK_SET)
            self._present[page] = True
            return data

    def _lock_page(self, page):
        """Take the machine-wide lock of ``page`` (its byte of the flags file), waiting for the
        process that holds it. The kernel's deadlock detection for these locks works per process,
        not per thread: when two processes each hold one page (two threads each) and wait for the
        other's, it answers EDEADLK, though each holder lets go once its page is stored (no
        thread waits for a lock while it holds one: there is no real deadlock). Then wait a
        moment and ask again."""
        delay = 0.001
        while True:
            try:
                fcntl.lockf(self._flags_fd, fcntl.LOCK_EX, 1, page, os.SEEK_SET)
                return
            except OSError as e:
                if e.errno != errno.EDEADLK:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _store(self, page, start, data):
        try:
            view = memoryview(data)
            done = 0
            while done < len(view):
                done += os.pwrite(self._data_fd, view[done:], start + done)
            os.fdatasync(self._data_fd)              # the bytes are on disk before the page is marked
            os.pwrite(self._flags_fd, b'\x01', page)
        except OSError as e:
            raise OSError(e.errno, f"cache directory {self.directory!r}: cannot store page {page} of "
                                   f"{self.remote.url}: {e.strerror}") from e

    def ensure_all(self, pages, threads: int = 8) -> None:
        """Make ``pages`` present, downloading the missing ones concurrently."""
        missing = [int(p) for p in pages if not self._present[int(p)]]
        if len(missing) <= 1:
            for page in missing:
                self.ensure(page)
            return
        with ThreadPoolExecutor(max_workers=min(threads, len(missing)),
                                thread_name_prefix='ffcv-page-cache') as pool:
            for _ in pool.map(self.ensure, missing):
                pass

    def read_into(self, page: int, view) -> None:
        """Copy page ``page`` (present first) into ``view``, a writable buffer of the page's length
        at most."""
        view = memoryview(view).cast('B')
        data = self.ensure(page)
        if data is not None:
            view[:] = memoryview(data)[:len(view)]
            return
        start = page * self.page_size
        done = 0
        while done < len(view):
            n = os.preadv(self._data_fd, [view[done:]], start + done)
            if n <= 0:
                raise OSError(f"cache directory {self.directory!r}: page {page} of {self.remote.url} is "
                              f"shorter than expected (its data file was truncated?)")
            done += n

    def mapping(self) -> np.ndarray:
        """The copy as a read-only uint8 array over a memory map (only present pages hold the
        file's bytes; the others read as zeros)."""
        with self._mapping_lock:
            if self._mapping is None:
                self._mapping = np.frombuffer(mmap.mmap(self._data_fd, self.size, access=mmap.ACCESS_READ),
                                              dtype=np.uint8)
            return self._mapping

    def read(self, start: int, end: int) -> np.ndarray:
        """Bytes ``[start, end)`` of the file (a read-only view on the mapping), their pages
        made present first."""
        if end > start:
            self.ensure_all(range(start // self.page_size, (end - 1) // self.page_size + 1))
        return self.mapping()[start:end]

    def close(self) -> None:
        """Close the files (the mapping stays valid while arrays use it)."""
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return (f"PageCache({self.remote.url!r} in {self.directory!r}, "
                f"{int(self._present.sum())}/{self.num_pages} pages known present)")
