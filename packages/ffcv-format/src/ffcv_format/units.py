"""Sizes and counts as people write them on a command line, and sizes as people read them.

Shared by the command lines of the packages (``ffcv convert``, ``ffcv doctor``, ...):

>>> parse_size('8MiB'), parse_size('4g'), parse_size('2097152')
(8388608, 4294967296, 2097152)
>>> human_size(8388608)
'8.0 MiB'
"""
import argparse

_UNITS = {'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}


def parse_size(text):
    """'8MiB', '4M', '1.5g', '2097152' -> bytes (binary units); ValueError if it is none of those."""
    value = str(text).strip().lower().replace('ib', '').replace('b', '')
    try:
        if value and value[-1] in _UNITS:
            size = int(float(value[:-1]) * _UNITS[value[-1]])
        else:
            size = int(value)
    except ValueError:
        raise ValueError(f"cannot read size {text!r}; write e.g. 8MiB or 8388608") from None
    if size < 0:
        raise ValueError(f"a size cannot be negative, got {text!r}")
    return size


def human_size(nbytes):
    """Bytes in binary units: '512 B', '1.5 KiB', '8.0 MiB'."""
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(nbytes) < 1024 or unit == 'TiB':
            return f"{nbytes:.0f} {unit}" if unit == 'B' else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def size_argument(text):
    """``argparse`` type for a size in bytes (see :func:`parse_size`)."""
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive_int_argument(text):
    """``argparse`` type for a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
