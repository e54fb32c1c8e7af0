"""Reader: random access to a `.beton` file through a memory map, or by byte ranges for a
file on object storage (``ffcv_format.remote``)."""
import mmap
import os

import numpy as np

from .errors import FormatError
from .fields import TYPE_ID_HANDLER, NDArrayField
from .spec import (ALLOC_TABLE_TYPE, CURRENT_VERSION, CUSTOM_TYPE_ID, FIELD_DESC_TYPE, HEADER_TYPE, MAX_PAGE_SIZE,
                   MIN_PAGE_SIZE, align_up, metadata_type)
from .remote import is_url, local_path
from .storage import Allocations, check_extents, describe, make_storage_state

#: bytes read at once from the start of a remote file: the header and the descriptors of up
#: to 62 fields
_REMOTE_HEAD_BYTES = 64 << 10


class _NotMapped:
    """``Reader.buffer`` of a remote file, which is not memory-mapped: a clear error."""

    def __get__(self, reader, owner=None):
        if reader is None:
            return self
        raise AttributeError(
            f"Reader({reader.file_name!r}).buffer: a remote file is not memory-mapped; read its bytes "
            f"with reader.read(ptr, size) or reader.stored_bytes(index, field), or load it with the Loader")


class Reader:
    """Opens a `.beton` file without reading it: everything is memory-mapped.

    >>> reader = Reader('data.beton')                       # doctest: +SKIP
    >>> reader.num_samples, reader.field_names               # doctest: +SKIP
    (50000, ['image', 'label'])
    >>> image, label = reader[0]                             # doctest: +SKIP

    ``reader[i]`` decodes sample ``i`` into Python values, one per field: ints, floats,
    numpy arrays, JSON values, HxWxC uint8 images. Fields of type 255 (defined by an
    application) need their class: ``Reader(path, custom_handlers={'name': MyField})``.
    A truncated or corrupted file raises :class:`FormatError` saying what is wrong.

    A file on object storage is named by its URL (``s3://bucket/train.beton``, ``gs://...``,
    ``https://...``: any fsspec URL; ``pip install 'ffcv-format[s3]'``, or ``gcs``, ``http``,
    ``azure``). Its header, field descriptors, metadata and allocation table are read when it
    is opened, with a few range requests, and checked as a local file's; ``read``,
    ``stored_bytes`` and ``reader[i]`` fetch the bytes they need. ``storage_options`` go to
    fsspec (credentials, ``endpoint_url``, ...). ``cache_dir``: a local directory where the
    file's pages are kept once downloaded, shared by the processes of the machine (see
    ``ffcv_format.page_cache``); the tables are then read through it too. ``retry``: a
    :class:`ffcv_format.remote.RetryPolicy` for transient errors. A missing object raises
    :class:`FileNotFoundError`, a denied access :class:`PermissionError`, both naming the URL.
    A remote file has no ``buffer`` and no ``storage_state()``: the loader's memory managers
    page it. ``storage_options``, ``cache_dir`` and ``retry`` are ignored for a local file.
    """

    buffer = _NotMapped()    # a local file's memory map replaces it in the instance

    def __init__(self, fname, custom_handlers=None, *, storage_options=None, cache_dir=None, retry=None):
        self.custom_handlers = dict(custom_handlers or {})
        #: the remote file (``ffcv_format.remote.RemoteFile``) of a URL, else None
        self.remote = None
        #: the on-disk copy of a remote file's pages (``ffcv_format.page_cache.PageCache``) when
        #: a ``cache_dir`` is given, else None
        self.page_cache = None
        self._allocations = None
        name = os.fspath(fname)
        if is_url(name):
            self._open_remote(name, storage_options, cache_dir, retry)
            return
        self.file_name = local_path(name) if isinstance(name, str) else name
        with open(self.file_name, 'rb') as f:
            self.file_size = os.fstat(f.fileno()).st_size
            if self.file_size < HEADER_TYPE.itemsize:
                raise FormatError(f"{self.file_name!r} is not a .beton file: it has {self.file_size} "
                                  f"bytes, fewer than the {HEADER_TYPE.itemsize}-byte header")
            self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        #: the whole file as a read-only uint8 array over the memory map
        self.buffer = np.frombuffer(self._mmap, dtype=np.uint8)
        self.header = self.buffer[:HEADER_TYPE.itemsize].view(HEADER_TYPE)[0].copy()
        self._read_header()
        self._read_field_descriptors(self.buffer)
        self._map_tables()

    def _open_remote(self, url, storage_options, cache_dir, retry):
        """Open the file at ``url``: the header and descriptors from one range read (two with
        more than 62 fields), checked as for a local file before the tables are read."""
        from .remote import RemoteFile
        self.file_name = url
        self.remote = RemoteFile(url, storage_options, retry=retry)
        self.file_size = self.remote.size
        if self.file_size < HEADER_TYPE.itemsize:
            raise FormatError(f"{self.file_name!r} is not a .beton file: it has {self.file_size} "
                              f"bytes, fewer than the {HEADER_TYPE.itemsize}-byte header")
        head = np.frombuffer(self.remote.read(0, min(self.file_size, _REMOTE_HEAD_BYTES)), dtype=np.uint8)
        self.header = head[:HEADER_TYPE.itemsize].view(HEADER_TYPE)[0].copy()
        self._read_header()
        descriptors_end = HEADER_TYPE.itemsize + self.num_fields * FIELD_DESC_TYPE.itemsize
        if head.size < descriptors_end <= self.file_size:
            rest = self.remote.read(head.size, descriptors_end)
            head = np.concatenate([head, np.frombuffer(rest, dtype=np.uint8)])
        self._read_field_descriptors(head)
        if cache_dir is not None:
            from .page_cache import PageCache
            self.page_cache = PageCache.shared(self.remote, cache_dir, self.page_size)
        self._map_tables()

    def _fail(self, message):
        raise FormatError(f"{self.file_name!r}: {message}")

    def _read_header(self):
        version = int(self.header['version'])
        if version != CURRENT_VERSION:
            self._fail(f"unsupported .beton version {version} (this reader reads version "
                       f"{CURRENT_VERSION}); the file may not be a .beton file or may be corrupted")
        self.num_fields = int(self.header['num_fields'])
        self.page_size = int(self.header['page_size'])
        self.num_samples = int(self.header['num_samples'])
        self.alloc_table_ptr = int(self.header['alloc_table_ptr'])
        if self.num_fields == 0:
            self._fail("the header says it has no fields")
        if self.page_size <= 0 or self.page_size & (self.page_size - 1):
            self._fail(f"page_size {self.page_size} is not a power of two")
        if not MIN_PAGE_SIZE <= self.page_size <= MAX_PAGE_SIZE:
            self._fail(f"page_size {self.page_size} is outside the format's bounds [{MIN_PAGE_SIZE}, "
                       f"{MAX_PAGE_SIZE}]")

    def _read_field_descriptors(self, head):
        """The fields, from ``head``: the file's first bytes (at least up to the descriptors'
        end, when the file has them)."""
        start = HEADER_TYPE.itemsize
        end = start + self.num_fields * FIELD_DESC_TYPE.itemsize
        if end > self.file_size:
            self._fail(f"truncated: {self.num_fields} field descriptors need {end} bytes, "
                       f"the file has {self.file_size}")
        descriptors = head[start:end].view(FIELD_DESC_TYPE)
        self.field_descriptors = descriptors
        self.field_names = []
        self.handlers = {}
        for index, descriptor in enumerate(descriptors):
            raw = descriptor['name'].tobytes().split(b'\0', 1)[0]
            try:
                name = raw.decode('ascii')
            except UnicodeDecodeError:
                self._fail(f"field {index} has a name that is not ASCII: {raw!r}")
            if not name:
                self._fail(f"field {index} has an empty name")
            if name in self.handlers:
                self._fail(f"two fields are named {name!r}")
            type_id = int(descriptor['type_id'])
            if type_id == CUSTOM_TYPE_ID:
                if name not in self.custom_handlers:
                    self._fail(f"field {name!r} has an application-defined type; pass its class: "
                               f"Reader(path, custom_handlers={{{name!r}: FieldClass}})")
                handler_class = self.custom_handlers[name]
            elif type_id in TYPE_ID_HANDLER:
                handler_class = TYPE_ID_HANDLER[type_id]
            else:
                self._fail(f"field {name!r} has unknown type id {type_id}")
            try:
                handler = handler_class.from_binary(descriptor['arguments'].copy())
            except Exception as e:
                self._fail(f"field {name!r} ({handler_class.__name__}) has invalid arguments: {e}")
            if isinstance(handler, NDArrayField) and handler.element_size > self.page_size:
                self._fail(f"field {name!r} ({handler!r}) has arrays of {handler.element_size} bytes, more "
                           f"than a page ({self.page_size} bytes): its shape or dtype is corrupt")
            self.field_names.append(name)
            self.handlers[name] = handler
        self.metadata_start = end

    def _map_tables(self):
        self.metadata_type = metadata_type([h.metadata_type for h in self.handlers.values()],
                                           self.field_names)
        self.metadata_end = self.metadata_start + self.num_samples * self.metadata_type.itemsize
        if self.metadata_end > self.file_size:
            self._fail(f"truncated: the metadata of {self.num_samples} samples ends at byte "
                       f"{self.metadata_end}, the file has {self.file_size} bytes")
        if not self.metadata_end <= self.alloc_table_ptr <= self.file_size:
            self._fail(f"the allocation table pointer {self.alloc_table_ptr} is outside "
                       f"[{self.metadata_end}, {self.file_size}] (truncated or corrupted file)")
        table_bytes = self.file_size - self.alloc_table_ptr
        if table_bytes % ALLOC_TABLE_TYPE.itemsize:
            self._fail(f"the allocation table is {table_bytes} bytes, not a multiple of "
                       f"{ALLOC_TABLE_TYPE.itemsize} (truncated or corrupted file)")
        if self.remote is None:
            self.metadata = np.ndarray((self.num_samples,), dtype=self.metadata_type,
                                       buffer=self._mmap, offset=self.metadata_start)
            self.alloc_table = np.ndarray((table_bytes // ALLOC_TABLE_TYPE.itemsize,),
                                          dtype=ALLOC_TABLE_TYPE, buffer=self._mmap,
                                          offset=self.alloc_table_ptr)
        else:
            self.metadata = self._remote_table(self.metadata_type, self.metadata_start, self.metadata_end)
            self.alloc_table = self._remote_table(ALLOC_TABLE_TYPE, self.alloc_table_ptr, self.file_size)
        if not self.alloc_table.size and self.alloc_table_ptr != self.metadata_end:
            # writers put an empty allocation table right after the metadata
            self._fail(f"the file has no allocations but {self.alloc_table_ptr - self.metadata_end} bytes between "
                       f"the metadata of {self.num_samples} samples and the allocation table (damaged header?)")
        if self.alloc_table.size and not self.num_samples:
            self._fail(f"the header says the file has no samples, but it has {self.alloc_table.size} allocations "
                       f"of data (damaged header?)")
        if self.alloc_table.size and not any(getattr(h, 'pointer_names', ()) for h in self.handlers.values()):
            self._fail(f"the file has {self.alloc_table.size} allocations of data, but none of its fields "
                       f"({', '.join(f'{n}: {type(h).__name__}' for n, h in self.handlers.items())}) keeps data "
                       f"outside the metadata (damaged field descriptors?)")

    def _remote_table(self, dtype, start, end):
        """Bytes ``[start, end)`` of the remote file as a read-only array of ``dtype``: through
        the page cache when there is one, else read into memory."""
        if end <= start:
            return np.zeros(0, dtype=dtype)
        return self._fetch(start, end).view(dtype)

    def _fetch(self, start, end):
        """Bytes ``[start, end)`` of the remote file (a read-only uint8 array)."""
        if self.page_cache is not None:
            return self.page_cache.read(start, end)
        return np.frombuffer(self.remote.read(start, end), dtype=np.uint8)

    # ------------------------------------------------------------ where the bytes are

    @property
    def data_region(self):
        """``(start, end)``: the file offsets data pointers may point into: from the first page
        boundary at or after the metadata to the allocation table (empty when there is none)."""
        start = min(align_up(self.metadata_end, self.page_size), self.alloc_table_ptr)
        return start, self.alloc_table_ptr

    def allocations(self):
        """The allocation table sorted by pointer (:class:`ffcv_format.storage.Allocations`):
        views on the file when it is sorted already (as this library writes it), else a
        sorted copy, made once."""
        if self._allocations is None:
            table = self.alloc_table
            if table.size and int(table['sample_id'].max()) >= self.num_samples:
                sample = int(table['sample_id'].max())
                self._fail(f"the allocation table has data of sample {sample}, but the header says the file has "
                           f"{self.num_samples} samples (damaged header or table)")
            ptrs = table['ptr']
            if ptrs.size and not np.all(ptrs[1:] >= ptrs[:-1]):
                order = np.argsort(ptrs, kind='stable')
                self._allocations = Allocations(ptrs[order], table['size'][order], table['sample_id'][order])
            else:
                self._allocations = Allocations(ptrs, table['size'], table['sample_id'])
        return self._allocations

    def allocation_size(self, ptr):
        """The size of the allocation that starts at `ptr`, from the allocation table."""
        allocations = self.allocations()
        lo = np.searchsorted(allocations.ptr, ptr, side='left')
        hi = np.searchsorted(allocations.ptr, ptr, side='right')
        if lo == hi:
            raise FormatError(f"{self.file_name!r}: no allocation starts at pointer {ptr}")
        return int(allocations.size[lo:hi].max())

    def extents(self, name, samples=None, problems=None):
        """Where field ``name`` of ``samples`` (default: all) keeps its data: a list with, for
        each of the field's ``pointer_names``, ``(member, ptrs, sizes)`` (uint64 pointers and
        int64 allocation sizes, one per sample).

        Every pointer is checked (see ``ffcv_format.storage``): it must start an allocation of
        its own sample, inside the data region and one page, of the size the field records.
        The first violation raises :class:`FormatError` naming the file, field and sample;
        given a list as ``problems``, violations are appended to it as ``(sample, message)``
        instead, and their sizes are -1.
        """
        handler = self._handler(name)
        column = self.metadata[name]
        if samples is None:
            samples = np.arange(self.num_samples, dtype=np.int64)
        else:
            samples = np.asarray(samples, dtype=np.int64).reshape(-1)
            column = column[samples]
        result = []
        members = tuple(getattr(handler, 'pointer_names', ()))
        if not members:
            return result
        expected = handler.expected_sizes(column)
        allocations = self.allocations()
        for member, wanted in zip(members, expected):
            ptrs = np.asarray(column[member] if member else column, dtype=np.uint64)
            sizes, codes = check_extents(allocations, ptrs, samples, wanted, self.data_region, self.page_size)
            for k in np.flatnonzero(codes):
                message = describe(int(codes[k]), int(ptrs[k]), int(sizes[k]), int(wanted[k]), self.data_region,
                                   self.page_size)
                if problems is None:
                    raise FormatError(f"{self.file_name!r}: sample {int(samples[k])}, field {name!r}: {message}")
                problems.append((int(samples[k]), f"field {name!r}: {message}"))
            result.append((member, ptrs, sizes))
        return result

    def stored_bytes(self, index, name, member=None):
        """The bytes field ``name`` of sample ``index`` stores (its first pointer's allocation,
        or ``member``'s), as they are in the file: e.g. a JPEG file, or raw pixels."""
        index = self._check_index(index)
        for found, ptrs, sizes in self.extents(name, [index]):
            if member is None or found == member:
                start, end = int(ptrs[0]), int(ptrs[0]) + int(sizes[0])
                return self.buffer[start:end] if self.remote is None else self._fetch(start, end)
        raise KeyError(f"field {name!r} keeps no data" + (f" under {member!r}" if member else ''))

    def sample_pages(self, names):
        """A ``(num_samples, k)`` int64 array: for fields ``names``, the page holding each of
        their pointers (read without checks: the loader's decoders check them)."""
        columns = []
        for name in names:
            field = self._handler(name)
            column = self.metadata[name]
            for pointer in getattr(field, 'pointer_names', ()):
                ptrs = np.asarray(column if pointer == '' else column[pointer], dtype=np.uint64)
                columns.append((ptrs // np.uint64(self.page_size)).astype(np.int64))
        if not columns:
            return np.full((self.num_samples, 0), -1, dtype=np.int64)
        return np.stack(columns, axis=1)

    def storage_state(self):
        """The storage state over the memory-mapped file (see ``ffcv_format.storage``): every
        page resident where it is in the file. A remote file has none (the loader's memory
        managers make one as they fetch its pages)."""
        if self.remote is not None:
            raise ValueError(f"{self.file_name!r} is a remote file: it is not memory-mapped, so it has no "
                             f"storage state of its own; the loader's memory managers (ffcv_loader.memory) "
                             f"page it")
        num_pages = -(-self.file_size // self.page_size)
        return make_storage_state(self.buffer, np.arange(num_pages, dtype=np.int64) * self.page_size,
                                  self.page_size, self.allocations(), self.data_region)

    def read(self, ptr, size):
        """The `size` bytes of the data region at `ptr` (a read-only view)."""
        start, end = self.data_region
        if not (size >= 0 and start <= ptr and ptr + size <= end):
            raise FormatError(f"{self.file_name!r}: pointer {ptr} (+{size} bytes) is outside the data region "
                              f"[{start}, {end})")
        if self.remote is not None:
            return self._fetch(int(ptr), int(ptr) + int(size))
        return self.buffer[ptr:ptr + size]

    def _handler(self, name):
        try:
            return self.handlers[name]
        except KeyError:
            raise KeyError(f"no field {name!r}; fields are {self.field_names}") from None

    # ------------------------------------------------------------ samples

    def __len__(self):
        return self.num_samples

    def __getitem__(self, index):
        """Sample `index` as a tuple of decoded values, one per field."""
        return tuple(self.read_field(index, name) for name in self.field_names)

    def read_field(self, index, name):
        """The decoded value of field `name` of sample `index`."""
        index = self._check_index(index)
        handler = self._handler(name)
        self.extents(name, [index])          # its pointers and sizes, checked
        try:
            return handler.decode(self.metadata[index][name], self)
        except FormatError as e:
            raise FormatError(f"{self.file_name!r}: sample {index}, field {name!r}: {e}") from e
        except Exception as e:
            raise FormatError(f"{self.file_name!r}: sample {index}, field {name!r} "
                              f"({type(handler).__name__}) does not decode: {e}") from e

    def _check_index(self, index):
        try:
            index = int(np.asarray(index).item()) if not isinstance(index, int) else index
        except (TypeError, ValueError):
            raise TypeError(f"sample indices must be integers, got {index!r}") from None
        if index < 0:
            index += self.num_samples
        if not 0 <= index < self.num_samples:
            raise IndexError(f"sample {index} is out of range: the file has {self.num_samples} samples")
        return index

    def close(self):
        """Release the memory map (views handed out before stay valid until freed)."""
        self.metadata = self.alloc_table = self.buffer = self._allocations = self.field_descriptors = None
        if self.remote is not None:   # the page cache is shared within the process: dropped, not closed
            self.page_cache = None
            self.remote.close()
            return
        try:
            self._mmap.close()
        except BufferError:
            pass  # arrays still reference it; it is released when they are freed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"Reader({self.file_name!r}: {self.num_samples} samples, fields "
                f"{ {n: type(h).__name__ for n, h in self.handlers.items()} })")
