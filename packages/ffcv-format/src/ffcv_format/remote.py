"""A file on object storage (any fsspec URL: ``s3://``, ``gs://``, ``https://``, ...), read by
byte ranges, with transient errors retried.

fsspec and the backend of a URL's protocol are optional: the extras ``s3``, ``gcs``, ``http``
and ``azure`` of ffcv-format (and of ffcv-loader) install them. They are imported when a URL
is opened, never for a local path.

Errors: a missing object is a :class:`FileNotFoundError` and a denied access a
:class:`PermissionError`, both naming the URL and raised at once. Transient errors
(connection reset or refused, timeouts, HTTP 5xx, 408 and 429, throttling) are retried with
exponential backoff (:class:`RetryPolicy`); when the attempts run out,
:class:`RemoteReadError` names the URL, the byte range, the attempts and the last error.
The backends retry some errors themselves first (botocore, s3fs): those count as one attempt
here.
"""
import errno
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, TypeVar

__all__ = ['RemoteFile', 'RetryPolicy', 'RemoteReadError', 'is_url', 'install_hint']

_URL = re.compile(r'^[A-Za-z][A-Za-z0-9+.\-]*://')
_PROTOCOLS = re.compile(r'([A-Za-z][A-Za-z0-9+.\-]*)://')

#: the extra of ffcv-format/ffcv-loader that installs the backend of a protocol
EXTRA_OF_PROTOCOL = {'s3': 's3', 's3a': 's3', 'gs': 'gcs', 'gcs': 'gcs', 'http': 'http', 'https': 'http',
                     'az': 'azure', 'abfs': 'azure', 'abfss': 'azure', 'adl': 'azure'}

T = TypeVar('T')


def is_url(name: Any) -> bool:
    """Whether ``name`` is a URL that fsspec opens (``s3://bucket/key``, ``https://...``, a
    chained ``simplecache::s3://...``) rather than a local path. ``file://`` URLs are local paths."""
    if not isinstance(name, str) or not _URL.match(name):
        return False
    return not name.lower().startswith('file://')


def local_path(name: str) -> str:
    """``name`` without a leading ``file://``."""
    return name[len('file://'):] if name.lower().startswith('file://') else name


def install_hint(url: str) -> str:
    """What to install to read ``url``: the extra of its protocol."""
    protocols = _PROTOCOLS.findall(url) or [url.split('://', 1)[0]]
    protocol = protocols[-1].lower()
    extra = EXTRA_OF_PROTOCOL.get(protocol)
    if extra is None:
        return (f"pip install fsspec and the fsspec backend of {protocol}:// (fsspec's list of "
                f"implementations names it)")
    return f"pip install 'ffcv-loader[{extra}]' (or 'ffcv-format[{extra}]' for the Reader alone)"


@dataclass(frozen=True)
class RetryPolicy:
    """How transient errors are retried: at most ``attempts`` tries of a request, waiting
    ``first_delay`` seconds after the first failure, twice as long after each next one (at
    most ``max_delay``), each wait shortened by a random part of up to half (so that the
    processes of a node do not retry in step)."""
    attempts: int = 6
    first_delay: float = 0.2
    max_delay: float = 10.0

    def __post_init__(self):
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if self.first_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure."""
        full = min(self.max_delay, self.first_delay * 2 ** (failures - 1))
        return full * random.uniform(0.5, 1.0)


class RemoteReadError(OSError):
    """A byte range of a remote file could not be read: its transient errors went on after
    every attempt, or the server gave an error that no retry helps. ``url``, ``start``,
    ``end`` and ``attempts`` say which."""

    def __init__(self, message: str, url: str, start: int, end: int, attempts: int):
        super().__init__(errno.EIO, message)
        self.url, self.start, self.end, self.attempts = url, start, end, attempts

    def __str__(self):
        return self.strerror


class _ShortRead(OSError):
    """A response with fewer bytes than asked for (a connection cut mid-body)."""


_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)
_TRANSIENT_ERRNOS = {errno.EBUSY, errno.EIO, getattr(errno, 'EREMOTEIO', errno.EIO), errno.EAGAIN,
                     errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED, errno.EPIPE,
                     errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.ENETRESET}
# words in the class names of the backends' exceptions (aiohttp, botocore, urllib3, requests,
# google-auth) that mean the connection or the server failed, not the request
_TRANSIENT_NAMES = ('Connection', 'Timeout', 'Disconnected', 'Payload', 'IncompleteRead', 'ResponseParser',
                    'ProtocolError', 'Throttl', 'SlowDown', 'ServiceUnavailable', 'TransportError')


def http_status(error: BaseException) -> Optional[int]:
    """The HTTP status an exception of a backend carries (aiohttp, botocore), or None."""
    for candidate in (error, error.__cause__):
        if candidate is None:
            continue
        status = getattr(candidate, 'status', None)
        if isinstance(status, int) and 100 <= status < 600:
            return status
        response = getattr(candidate, 'response', None)
        if isinstance(response, Mapping):
            status = response.get('ResponseMetadata', {}).get('HTTPStatusCode')
            if isinstance(status, int):
                return status
    return None


def is_transient(error: BaseException) -> bool:
    """Whether retrying may help: the connection or the server failed, not the request."""
    if isinstance(error, (PermissionError,) + _MISSING):
        return False
    status = http_status(error)
    if status is not None:
        return status >= 500 or status in (408, 429)
    if isinstance(error, (ConnectionError, TimeoutError, _ShortRead)):
        return True
    names = [cls.__name__ for cls in type(error).__mro__]
    if any(word in name for name in names for word in _TRANSIENT_NAMES):
        return True
    if isinstance(error, OSError):
        return error.errno in _TRANSIENT_ERRNOS
    return False


def open_filesystem(url: str, storage_options: Optional[Mapping[str, Any]]):
    """``(filesystem, path)`` for ``url`` through fsspec; an ImportError saying which extra to
    install when fsspec or the protocol's backend is missing."""
    try:
        import fsspec
    except ImportError:
        raise ImportError(f"reading {url} needs fsspec and the backend of its protocol: "
                          f"{install_hint(url)}") from None
    try:
        return fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as e:
        raise ImportError(f"reading {url} needs the fsspec backend of its protocol ({e}): "
                          f"{install_hint(url)}") from e
    except ValueError as e:
        if 'protocol' in str(e).lower():
            raise ValueError(f"{url}: fsspec does not know this protocol ({e}); {install_hint(url)}") from e
        raise


class RemoteFile:
    """The object at ``url``, read by byte ranges.

    ``storage_options`` go to fsspec (credentials, ``endpoint_url``, ``client_kwargs``, ...).
    The object is looked up when it is opened: a missing one raises :class:`FileNotFoundError`
    and a denied access :class:`PermissionError`, naming the URL. ``size`` is its length in
    bytes and ``version`` what identifies its content where the store says (ETag, version id,
    or modification time; None otherwise). The object must not change while it is read.

    Reads larger than ``part_size`` bytes are split into requests of that size sent at once.
    Methods may be called from many threads: requests run concurrently.
    """

    def __init__(self, url: str, storage_options: Optional[Mapping[str, Any]] = None,
                 retry: Optional[RetryPolicy] = None, part_size: int = 8 << 20):
        self.url = url
        self.retry = retry if retry is not None else RetryPolicy()
        self.part_size = int(part_size)
        self._fs, self._path = open_filesystem(url, storage_options)
        self._parts = None
        self._parts_lock = threading.Lock()
        info = self._retried(lambda: self._fs.info(self._path), 'looking it up')
        if info.get('type') == 'directory':
            raise IsADirectoryError(f"{url} is a folder, not a file")
        if info.get('size') is None:
            raise RemoteReadError(f"{url}: the server does not say how large the file is (no size, no "
                                  f"Content-Length); it cannot be read by ranges", url, 0, 0, 1)
        self.size = int(info['size'])
        version = next((info[k] for k in ('ETag', 'etag', 'VersionId', 'generation', 'md5Hash',
                                          'LastModified', 'last_modified', 'mtime', 'updated')
                        if info.get(k) not in (None, '')), None)
        self.version = None if version is None else str(version).strip('"')

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object (``end`` at most its size)."""
        start, end = int(start), int(end)
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"{self.url}: bytes [{start}, {end}) are outside the file ({self.size} bytes)")
        if end - start <= self.part_size:
            return self._read_part(start, end)
        bounds = [(lo, min(lo + self.part_size, end)) for lo in range(start, end, self.part_size)]
        return b''.join(self._part_pool().map(lambda b: self._read_part(*b), bounds))

    def read_into(self, view: memoryview, start: int) -> None:
        """Fill ``view`` (a writable buffer) with the bytes of the object from ``start`` on."""
        view = memoryview(view).cast('B')
        view[:] = self.read(start, start + len(view))

    def _part_pool(self):
        with self._parts_lock:
            if self._parts is None:
                self._parts = ThreadPoolExecutor(max_workers=8, thread_name_prefix='ffcv-range-reader')
            return self._parts

    def _read_part(self, start: int, end: int) -> bytes:
        if start == end:
            return b''

        def request():
            data = self._fs.cat_file(self._path, start=start, end=end)
            if len(data) == end - start:
                return data
            if len(data) == self.size:      # a server that ignores Range sends the whole file
                return data[start:end]
            raise _ShortRead(f"the server sent {len(data)} bytes")

        return self._retried(request, f"reading bytes [{start}, {end})", start, end)

    def _retried(self, call: Callable[[], T], what: str, start: int = 0, end: int = 0) -> T:
        """``call()``, retried on transient errors; missing objects and denied access raised at
        once as FileNotFoundError/PermissionError naming the URL."""
        began = time.monotonic()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return call()
            except Exception as e:
                error = e
            status = http_status(error)
            if isinstance(error, PermissionError) or status in (401, 403):
                raise PermissionError(f"{self.url}: access denied ({what}): {error}") from error
            if isinstance(error, _MISSING) or status in (404, 410):
                raise FileNotFoundError(f"{self.url}: no such file ({what}): {error}") from error
            if not is_transient(error):
                raise RemoteReadError(f"{self.url}: {what} failed: {type(error).__name__}: {error}",
                                      self.url, start, end, attempt) from error
            if attempt < self.retry.attempts:
                time.sleep(self.retry.delay(attempt))
        raise RemoteReadError(
            f"{self.url}: {what} failed {self.retry.attempts} times in {time.monotonic() - began:.1f} s "
            f"(transient errors, retried with exponential backoff); the last: "
            f"{type(error).__name__}: {error}",
            self.url, start, end, self.retry.attempts) from error

    def close(self) -> None:
        with self._parts_lock:
            if self._parts is not None:
                self._parts.shutdown(wait=False)
                self._parts = None

    def __repr__(self):
        return f"RemoteFile({self.url!r}, {self.size} bytes)"
