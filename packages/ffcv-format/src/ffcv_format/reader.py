"""Reader: random access to a `.beton` file through a memory map."""
import mmap
import os

import numpy as np

from .errors import FormatError
from .fields import TYPE_ID_HANDLER
from .spec import (ALLOC_TABLE_TYPE, CURRENT_VERSION, CUSTOM_TYPE_ID, FIELD_DESC_TYPE,
                   HEADER_TYPE, metadata_type)


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
    """

    def __init__(self, fname, custom_handlers=None):
        self.file_name = os.fspath(fname)
        self.custom_handlers = dict(custom_handlers or {})
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
        self._read_field_descriptors()
        self._map_tables()
        self._sorted_ptrs = None

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

    def _read_field_descriptors(self):
        start = HEADER_TYPE.itemsize
        end = start + self.num_fields * FIELD_DESC_TYPE.itemsize
        if end > self.file_size:
            self._fail(f"truncated: {self.num_fields} field descriptors need {end} bytes, "
                       f"the file has {self.file_size}")
        descriptors = self.buffer[start:end].view(FIELD_DESC_TYPE)
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
        self.metadata = np.ndarray((self.num_samples,), dtype=self.metadata_type,
                                   buffer=self._mmap, offset=self.metadata_start)
        self.alloc_table = np.ndarray((table_bytes // ALLOC_TABLE_TYPE.itemsize,),
                                      dtype=ALLOC_TABLE_TYPE, buffer=self._mmap,
                                      offset=self.alloc_table_ptr)

    # ------------------------------------------------------------ storage access

    def read(self, ptr, size):
        """The `size` bytes of the data region at `ptr` (a read-only view)."""
        if not (self.metadata_end <= ptr and ptr + size <= self.alloc_table_ptr and size >= 0):
            raise FormatError(f"pointer {ptr} (+{size} bytes) is outside the data region "
                              f"[{self.metadata_end}, {self.alloc_table_ptr})")
        return self.buffer[ptr:ptr + size]

    def allocation_size(self, ptr):
        """The size of the allocation that starts at `ptr`, from the allocation table."""
        ptrs, sizes = self.allocation_index()
        lo = np.searchsorted(ptrs, ptr, side='left')
        hi = np.searchsorted(ptrs, ptr, side='right')
        if lo == hi:
            raise FormatError(f"no allocation starts at pointer {ptr}")
        return int(sizes[lo:hi].max())

    def allocation_index(self):
        """The allocation table's pointers and sizes sorted by pointer, as two arrays: views
        on the file when it is sorted already (as this library writes it), else a sorted copy
        (made once)."""
        if self._sorted_ptrs is None:
            ptrs = self.alloc_table['ptr']
            if ptrs.size and not np.all(ptrs[1:] >= ptrs[:-1]):
                order = np.argsort(ptrs, kind='stable')
                self._sorted_ptrs = (ptrs[order], self.alloc_table['size'][order])
            else:
                self._sorted_ptrs = (ptrs, self.alloc_table['size'])
        return self._sorted_ptrs

    # ------------------------------------------------------------ samples

    def __len__(self):
        return self.num_samples

    def __getitem__(self, index):
        """Sample `index` as a tuple of decoded values, one per field."""
        return tuple(self.read_field(index, name) for name in self.field_names)

    def read_field(self, index, name):
        """The decoded value of field `name` of sample `index`."""
        index = self._check_index(index)
        try:
            handler = self.handlers[name]
        except KeyError:
            raise KeyError(f"no field {name!r}; fields are {self.field_names}") from None
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
        self.metadata = self.alloc_table = self.buffer = self._sorted_ptrs = self.field_descriptors = None
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
