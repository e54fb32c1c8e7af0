"""The fixed structures of the `.beton` format, version 2 (see docs/format.md)."""
import numpy as np

CURRENT_VERSION = 2

HEADER_TYPE = np.dtype([
    ('version', '<u2'),
    ('num_fields', '<u2'),
    ('page_size', '<u4'),
    ('num_samples', '<u8'),
    ('alloc_table_ptr', '<u8'),
], align=True)

FIELD_NAME_MAX_BYTES = 16
FIELD_ARGS_BYTES = 1024

FIELD_DESC_TYPE = np.dtype([
    ('type_id', '<u1'),
    ('name', ('<u1', FIELD_NAME_MAX_BYTES)),
    ('arguments', ('<u1', FIELD_ARGS_BYTES)),
], align=True)

ALLOC_TABLE_TYPE = np.dtype([
    ('sample_id', '<u8'),
    ('ptr', '<u8'),
    ('size', '<u8'),
])

# The arguments block of one field descriptor.
ARGS_TYPE = np.dtype(('<u1', FIELD_ARGS_BYTES))

MIN_PAGE_SIZE = 1 << 21   # 2 MiB, FFCV 1.0's smallest page
MAX_PAGE_SIZE = 1 << 31   # the largest power of two that fits the header's u4
DEFAULT_PAGE_SIZE = 1 << 23  # 8 MiB

CUSTOM_TYPE_ID = 255


def metadata_type(field_metadata_types, names=None):
    """The dtype of one metadata row: the fields' metadata dtypes as an aligned struct.

    Members are named after the fields (``names``) and also reachable by FFCV 1.0's
    positional names ``'f0'``, ``'f1'``, ... (numpy field titles), except a positional name
    that is also the name of a field (that name then means the field).
    """
    positional = [f'f{i}' for i in range(len(field_metadata_types))]
    if names is None:
        return np.dtype(list(zip(positional, field_metadata_types)), align=True)
    names = list(names)
    taken = set(names)
    members = [((title, name) if title not in taken and title != name else name, dtype)
               for title, name, dtype in zip(positional, names, field_metadata_types)]
    return np.dtype(members, align=True)


def metadata_start(num_fields):
    """Offset of the metadata table: right after the field descriptors."""
    return HEADER_TYPE.itemsize + num_fields * FIELD_DESC_TYPE.itemsize


def align_up(offset, page_size):
    return -(-offset // page_size) * page_size


def check_page_size(page_size):
    """Raise ValueError unless `page_size` is one this format allows."""
    if (not isinstance(page_size, (int, np.integer)) or page_size <= 0
            or page_size & (page_size - 1)):
        raise ValueError(f"page_size must be a power of two, got {page_size!r}")
    if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(
            f"page_size must be between {MIN_PAGE_SIZE} (2 MiB) and {MAX_PAGE_SIZE} (2 GiB), "
            f"got {page_size}")


def page_size_for(nbytes):
    """The smallest allowed page size that holds an allocation of `nbytes`."""
    size = MIN_PAGE_SIZE
    while size < nbytes:
        size *= 2
    return size
