"""Scalar fields: the value is stored in the metadata row itself."""
import operator

import numpy as np

from .base import Field, empty_arguments


class FloatField(Field):
    """A float64 per sample.

    >>> FloatField()
    FloatField()
    """

    TYPE_ID = 0

    @property
    def metadata_type(self):
        return np.dtype('<f8')

    @staticmethod
    def from_binary(binary):
        return FloatField()

    def to_binary(self):
        return empty_arguments()

    def encode(self, destination, field, malloc):
        if isinstance(field, (str, bytes, bytearray)) or isinstance(field, bool):
            raise TypeError(f"FloatField expects a real number, got {type(field).__name__} {field!r}")
        try:
            destination[0] = float(field)
        except (TypeError, ValueError):
            raise TypeError(
                f"FloatField expects a real number, got {type(field).__name__} {field!r:.80}") from None

    def decode(self, metadata, storage):
        return float(metadata)


class IntField(Field):
    """A signed 64-bit integer per sample (e.g. a class label)."""

    TYPE_ID = 1

    @property
    def metadata_type(self):
        return np.dtype('<i8')

    @staticmethod
    def from_binary(binary):
        return IntField()

    def to_binary(self):
        return empty_arguments()

    def encode(self, destination, field, malloc):
        try:
            value = operator.index(field)
        except TypeError:
            raise TypeError(
                f"IntField expects an integer, got {type(field).__name__} {field!r:.80}") from None
        if not -(1 << 63) <= value < (1 << 63):
            raise OverflowError(f"IntField stores 64-bit signed integers; {value} is out of range")
        destination[0] = value

    def decode(self, metadata, storage):
        return int(metadata)
