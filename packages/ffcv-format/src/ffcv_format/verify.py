"""verify(): check a whole `.beton` file."""
import numpy as np

from .errors import FormatError
from .fields.image import MODE_JPEG, ImageField, check_stored_channels
from .reader import Reader

MAX_REPORTED = 20


def verify(path, decode=True, custom_handlers=None):
    """Check every structural rule of docs/format.md and, with ``decode``, every sample.

    Structure: the header, field descriptors and table positions (checked when the file is
    opened); every allocation inside one page of the data region, without wrapping around,
    owned by a sample of the file, none overlapping another; every data pointer of the
    metadata the start of an allocation of its own sample, of the size its field records
    (raw images ``height * width * channels``, arrays their element size, bytes values their
    recorded size). Then every sample is decoded; JPEG images strictly: one that libjpeg
    reports as corrupt is a problem, even when it decodes to something.

    Returns a summary dict on success; raises :class:`FormatError` listing the problems
    (up to 20), each naming its sample, otherwise.

    >>> verify('data.beton')  # doctest: +SKIP
    {'num_samples': 50000, 'fields': {'image': 'RGBImageField', 'label': 'IntField'}, ...}
    """
    reader = Reader(path, custom_handlers=custom_handlers)
    try:
        problems = _structure_problems(reader)
        if decode and not problems:
            problems = _decode_problems(reader)
        if problems:
            shown = "\n  ".join(problems[:MAX_REPORTED])
            raise FormatError(f"{reader.file_name!r} failed verification ({len(problems)} problem(s)"
                              f"{', first ' + str(MAX_REPORTED) if len(problems) > MAX_REPORTED else ''}):"
                              f"\n  {shown}")
        return {
            'num_samples': reader.num_samples,
            'fields': {name: type(h).__name__ for name, h in reader.handlers.items()},
            'page_size': reader.page_size,
            'num_allocations': int(reader.alloc_table.size),
            'file_size': reader.file_size,
        }
    finally:
        reader.close()


def _structure_problems(reader):
    problems = []
    table = reader.alloc_table
    ptr = np.asarray(table['ptr'], dtype=np.uint64)
    size = np.asarray(table['size'], dtype=np.uint64)
    sample_id = np.asarray(table['sample_id'], dtype=np.uint64)
    page = np.uint64(reader.page_size)
    start, end = (np.uint64(v) for v in reader.data_region)

    def report(mask, message):
        for i in np.flatnonzero(mask)[:MAX_REPORTED]:
            problems.append(message(int(i)))

    outside = (ptr < start) | (ptr >= end)
    report(outside, lambda i: f"allocation {i} at {ptr[i]} is outside the data region [{start}, {end})")
    inside = ~outside
    too_big = inside & (size > page)       # also what would wrap around in ptr + size
    report(too_big, lambda i: f"allocation {i} at {ptr[i]} is {size[i]} bytes, more than a page ({page})")
    fits = inside & ~too_big
    past_end = fits & (ptr + size > end)
    report(past_end, lambda i: f"allocation {i} ({ptr[i]}+{size[i]}) runs past the data region's end ({end})")
    crosses = fits & ~past_end & (size > 0) & (ptr // page != (ptr + size - np.uint64(1)) // page)
    report(crosses, lambda i: f"allocation {i} ({ptr[i]}+{size[i]}) crosses a page boundary")
    report(sample_id >= np.uint64(reader.num_samples),
           lambda i: f"allocation {i} belongs to sample {sample_id[i]}, beyond {reader.num_samples} samples")
    sane = fits & ~past_end
    order = np.flatnonzero(sane)[np.argsort(ptr[sane], kind='stable')]
    sp, ss = ptr[order], size[order]
    overlap = sp[:-1] + ss[:-1] > sp[1:]
    report(overlap, lambda i: f"allocations at {sp[i]} (+{ss[i]}) and {sp[i + 1]} overlap")
    for name in reader.field_names:
        found = []
        reader.extents(name, problems=found)
        problems += [f"sample {sample}, {message}" for sample, message in found[:MAX_REPORTED]]
    return problems


def _decode_problems(reader):
    import simplejpeg
    problems = []
    images = {name: handler for name, handler in reader.handlers.items() if isinstance(handler, ImageField)}
    for index in range(reader.num_samples):
        for name in reader.field_names:
            try:
                row = reader.metadata[index][name]
                if name in images and int(row['mode']) == MODE_JPEG:
                    _check_jpeg(reader, index, name, images[name], row, simplejpeg)
                else:
                    reader.read_field(index, name)
            except FormatError as e:
                problems.append(str(e))
            if len(problems) >= MAX_REPORTED:
                return problems
    return problems


def _check_jpeg(reader, index, name, handler, row, simplejpeg):
    """A JPEG decoded strictly: libjpeg's warnings (corrupt data) are problems."""
    data = reader.stored_bytes(index, name)
    colorspace = 'GRAY' if handler.channels == 1 else 'RGB'
    try:
        check_stored_channels(data, handler.channels)
        image = simplejpeg.decode_jpeg(np.ascontiguousarray(data), colorspace, strict=True)
    except ValueError as e:
        raise FormatError(f"{reader.file_name!r}: sample {index}, field {name!r}: its JPEG data is corrupt "
                          f"({e})") from None
    if image.shape[:2] != (int(row['height']), int(row['width'])):
        raise FormatError(f"{reader.file_name!r}: sample {index}, field {name!r}: the stored image is "
                          f"{image.shape[1]}x{image.shape[0]}, its metadata says {int(row['width'])}x"
                          f"{int(row['height'])}")
