"""The Field protocol: what a field stores and how a value is encoded.

The protocol is FFCV 1.0's, so that fields written for it keep working:

- ``TYPE_ID``: the type id stored in the file. As in FFCV 1.0, only the class that declares
  it is written with it: a subclass declaring no ``TYPE_ID`` of its own (say, an
  ``NDArrayField`` with its own ``encode``) is application-defined, type 255, and is read
  back with ``custom_handlers`` / the loader's ``custom_fields``.
- ``metadata_type``: the numpy dtype of the field's part of a metadata row.
- ``to_binary()`` / ``from_binary(arguments)``: the field's 1024 argument bytes.
- ``encode(destination, value, malloc)``: fill ``destination`` (a one-row view of the
  field's metadata) from ``value``; ``malloc(size)`` returns ``(ptr, buffer)``, a file
  offset and a writable uint8 array of ``size`` bytes that will be stored there.

ffcv_format adds ``decode(metadata, storage)`` (the Python value of one sample, used by
``Reader[i]``) and ``pointer_names`` (which parts of the metadata hold data pointers).
``get_decoder_class()`` (FFCV 1.0's) names the decoder a loader uses for the field when its
pipeline does not start with one; decoders live in ffcv-ops, which registers them here
(``register_decoder_class``).
"""
from abc import ABC, abstractmethod
import threading

import numpy as np

from ..spec import CUSTOM_TYPE_ID, FIELD_ARGS_BYTES

ARG_TYPE = np.dtype([('', '<u1', FIELD_ARGS_BYTES)])

_local = threading.local()

# (field class, decoder class), most recently registered first; filled by ffcv-ops
_DECODER_CLASSES = []


def register_decoder_class(field_type, decoder_type):
    """Make ``decoder_type`` what ``get_decoder_class()`` returns for fields of ``field_type``
    (and its subclasses, unless they have their own)."""
    _DECODER_CLASSES.insert(0, (field_type, decoder_type))


def current_sample_id():
    """The index of the sample being encoded on this thread (``None`` outside a write).

    Fields use it to make per-sample choices (e.g. ``write_mode='proportion'``) that do
    not depend on which worker encodes the sample.
    """
    return getattr(_local, 'sample_id', None)


def _set_current_sample_id(sample_id):
    _local.sample_id = sample_id


def sample_uniform(sample_id, salt=0):
    """A number in [0, 1) that depends only on (sample_id, salt): splitmix64."""
    x = (int(sample_id) * 0x9E3779B97F4A7C15 + salt * 0xD1B54A32D192ED03
         + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    return (x >> 11) / float(1 << 53)


def empty_arguments():
    """A zeroed argument block, in the form ``to_binary`` returns."""
    return np.zeros(1, dtype=ARG_TYPE)[0]


def arguments_from_bytes(data):
    args = np.zeros(1, dtype=ARG_TYPE)
    raw = args.view(np.uint8)
    raw[:len(data)] = np.frombuffer(bytes(data), dtype=np.uint8)
    return args[0]


class Field(ABC):
    """Base class of every field type."""

    TYPE_ID = CUSTOM_TYPE_ID
    #: names of the metadata members that hold data pointers; ``''`` when the whole
    #: metadata value is the pointer.
    pointer_names = ()

    @property
    def type_id(self):
        """The type id written to the file for this field: its class's own ``TYPE_ID``, or 255
        (application-defined) for a subclass that declares none (FFCV 1.0's rule)."""
        return self.TYPE_ID if self.declares_type_id() else CUSTOM_TYPE_ID

    def declares_type_id(self):
        """Whether this field's class declares its own ``TYPE_ID`` (is a built-in type)."""
        return 'TYPE_ID' in type(self).__dict__

    def get_decoder_class(self):
        """The decoder a loader uses for this field when its pipeline starts with none."""
        for field_type, decoder_type in _DECODER_CLASSES:
            if isinstance(self, field_type):
                return decoder_type
        raise TypeError(f"no default decoder for a {type(self).__name__}: start its pipeline with a "
                        f"decoder, or give the field class a get_decoder_class() method (decoders "
                        f"come with ffcv-ops, which registers those of the built-in fields)")

    @property
    @abstractmethod
    def metadata_type(self) -> np.dtype:
        ...

    @staticmethod
    @abstractmethod
    def from_binary(binary) -> 'Field':
        ...

    @abstractmethod
    def to_binary(self):
        ...

    @abstractmethod
    def encode(self, destination, field, malloc):
        ...

    def expected_sizes(self, metadata):
        """For each of ``pointer_names``, the size the allocations of samples ``metadata`` (a
        column of this field's metadata) must have, as an int64 array; -1 where the field
        records none (e.g. JPEG data, whose size only the allocation table knows)."""
        n = len(metadata)
        return [np.full(n, -1, dtype=np.int64) for _ in self.pointer_names]

    def decode(self, metadata, storage):
        """The Python value of one sample; ``storage`` reads the file's data region."""
        raise NotImplementedError(f"{type(self).__name__} cannot decode samples for inspection")

    def __repr__(self):
        return f"{type(self).__name__}()"
