"""verify(): check a whole `.beton` file."""
import numpy as np

from .errors import FormatError
from .reader import Reader

MAX_REPORTED = 20


def verify(path, decode=True, custom_handlers=None):
    """Check every structural rule of docs/format.md and, with ``decode``, every sample.

    Returns a summary dict on success; raises :class:`FormatError` listing the problems
    (up to 20) otherwise.

    >>> verify('data.beton')  # doctest: +SKIP
    {'num_samples': 50000, 'fields': {'image': 'RGBImageField', 'label': 'IntField'}, ...}
    """
    reader = Reader(path, custom_handlers=custom_handlers)
    problems = []
    table = np.asarray(reader.alloc_table)
    ptr = table['ptr'].astype(np.uint64)
    size = table['size'].astype(np.uint64)
    sample_id = table['sample_id']
    page = np.uint64(reader.page_size)
    data_lo = np.uint64(reader.metadata_end)
    data_hi = np.uint64(reader.alloc_table_ptr)

    def report(mask, message):
        for i in np.flatnonzero(mask)[:MAX_REPORTED]:
            problems.append(message(int(i)))

    report(ptr < data_lo, lambda i: f"allocation {i} at {ptr[i]} starts before the data region ({data_lo})")
    report(ptr + size > data_hi, lambda i: f"allocation {i} ({ptr[i]}+{size[i]}) runs past the "
                                           f"allocation table at {data_hi}")
    crosses = (size > 0) & (ptr // page != (ptr + size - np.uint64(1)) // page)
    report(crosses, lambda i: f"allocation {i} ({ptr[i]}+{size[i]}) crosses a page boundary")
    report(sample_id >= reader.num_samples,
           lambda i: f"allocation {i} belongs to sample {sample_id[i]}, beyond {reader.num_samples} samples")
    order = np.argsort(ptr, kind='stable')
    sp, ss = ptr[order], size[order]
    overlap = sp[:-1] + ss[:-1] > sp[1:]
    report(overlap, lambda i: f"allocations at {sp[i]} (+{ss[i]}) and {sp[i + 1]} overlap")

    sorted_ids = sample_id[order]
    for name, handler in reader.handlers.items():
        column = reader.metadata[name]
        for pointer in getattr(handler, 'pointer_names', ()):
            values = np.asarray(column[pointer] if pointer else column).astype(np.uint64)
            at = np.searchsorted(sp, values)
            found = at < sp.size
            found[found] &= sp[at[found]] == values[found]
            report(~found, lambda i: f"sample {i}, field {name!r}: pointer {values[i]} is not an allocation")
            owner_ok = np.ones_like(found)
            owner_ok[found] = sorted_ids[at[found]] == np.arange(reader.num_samples)[found]
            report(~owner_ok, lambda i: f"sample {i}, field {name!r}: pointer {values[i]} belongs to "
                                        f"another sample")
    if decode and not problems:
        for index in range(reader.num_samples):
            try:
                reader[index]
            except FormatError as e:
                problems.append(str(e))
                if len(problems) >= MAX_REPORTED:
                    break
    if problems:
        shown = "\n  ".join(problems[:MAX_REPORTED])
        raise FormatError(f"{reader.file_name!r} failed verification ({len(problems)} problem(s)"
                          f"{', first ' + str(MAX_REPORTED) if len(problems) > MAX_REPORTED else ''}):"
                          f"\n  {shown}")
    return {
        'num_samples': reader.num_samples,
        'fields': {name: type(h).__name__ for name, h in reader.handlers.items()},
        'page_size': reader.page_size,
        'num_allocations': int(table.size),
        'file_size': reader.file_size,
    }
