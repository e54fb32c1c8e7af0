"""Variable-length fields: raw bytes, and JSON documents stored as bytes."""
import json

import numpy as np

from .base import Field, empty_arguments

BYTES_METADATA = np.dtype([('ptr', '<u8'), ('size', '<u8')])


def _as_byte_array(field):
    if isinstance(field, (bytes, bytearray, memoryview)):
        return np.frombuffer(field, dtype=np.uint8)
    if isinstance(field, np.ndarray):
        if field.ndim != 1 or field.dtype.kind not in 'uifb':
            raise TypeError(
                f"BytesField expects bytes or a 1-D uint8 array, got a {field.dtype} array "
                f"of shape {field.shape}")
        if field.dtype in (np.uint8, np.int8):
            return np.ascontiguousarray(field).view(np.uint8)
        # FFCV 1.0 stored other arrays element by element as bytes; so do we, when no
        # element changes on the way (each is an integer from 0 to 255)
        as_bytes = field.astype(np.uint8)
        if not np.array_equal(as_bytes, field):
            raise TypeError(f"BytesField stores bytes: this {field.dtype} array has values that are not "
                            f"integers from 0 to 255 (first: {field[as_bytes != field][0]!r}); pass "
                            f"array.tobytes() to store its raw bytes")
        return as_bytes
    raise TypeError(f"BytesField expects bytes or a 1-D uint8 array, got {type(field).__name__}")


class BytesField(Field):
    """A variable-length byte string per sample; decoded as a 1-D uint8 array."""

    TYPE_ID = 3
    pointer_names = ('ptr',)

    @property
    def metadata_type(self):
        return BYTES_METADATA

    @staticmethod
    def from_binary(binary):
        return BytesField()

    def to_binary(self):
        return empty_arguments()

    def expected_sizes(self, metadata):
        return [np.minimum(np.asarray(metadata['size'], dtype=np.uint64),
                           np.uint64(1 << 62)).astype(np.int64)]

    def _store(self, destination, data, malloc):
        ptr, buffer = malloc(data.size)
        buffer[:] = data
        destination['ptr'] = ptr
        destination['size'] = data.size

    def encode(self, destination, field, malloc):
        self._store(destination, _as_byte_array(field), malloc)

    def decode(self, metadata, storage):
        return storage.read(int(metadata['ptr']), int(metadata['size'])).copy()



class JSONField(BytesField):
    """A JSON-encodable value per sample (dicts, lists, strings, numbers...).

    Stored as the UTF-8 bytes of ``json.dumps(value)`` followed by a zero byte.
    """

    TYPE_ID = 5

    @staticmethod
    def from_binary(binary):
        return JSONField()

    def encode(self, destination, field, malloc):
        try:
            text = json.dumps(field)
        except (TypeError, ValueError) as e:
            raise TypeError(f"JSONField value cannot be encoded as JSON: {e}") from None
        data = np.frombuffer((text + '\0').encode('utf-8'), dtype=np.uint8)
        self._store(destination, data, malloc)

    @staticmethod
    def unpack(batch):
        """The JSON values of a loader's batch of this field (a ``(batch, max_size)`` array or
        tensor of zero-terminated bytes), as a list; of one sample (a 1-D row), its value
        (FFCV 1.0's helper)."""
        if hasattr(batch, 'detach'):
            batch = batch.detach().cpu().numpy()
        batch = np.asarray(batch, dtype=np.uint8)
        if batch.ndim == 1:
            return JSONField._parse(batch)
        return [JSONField._parse(row) for row in batch]

    @staticmethod
    def _parse(data):
        zeros = np.flatnonzero(data == 0)
        end = zeros[0] if zeros.size else data.size
        return json.loads(data[:end].tobytes().decode('utf-8'))

    def decode(self, metadata, storage):
        return self._parse(storage.read(int(metadata['ptr']), int(metadata['size'])))
