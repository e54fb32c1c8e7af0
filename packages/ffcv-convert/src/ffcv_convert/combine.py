"""Datasets as building blocks: concat, subset and append ``.beton`` files.

All three copy samples into a new file without decoding them: the stored bytes of each
sample are packed into fresh pages (so the result is as compact as a file written
directly) and the pointers in its metadata are rewritten. Byte ranges are copied by the
kernel (``copy_file_range``) where the filesystem allows. The new file appears only
once complete; an existing file is replaced only with ``overwrite=True``.
"""
import errno
import os

import numpy as np
from ffcv_format import FormatError, Reader
from ffcv_format.atomic import AtomicFile
from ffcv_format.spec import (
    ALLOC_TABLE_TYPE,
    CURRENT_VERSION,
    FIELD_DESC_TYPE,
    HEADER_TYPE,
    align_up,
    check_page_size,
    metadata_start,
)

from .errors import FieldMismatchError

__all__ = ['concat', 'subset', 'append', 'combine', 'parse_indices']


def _descriptors(path, num_fields):
    with open(path, 'rb') as f:
        f.seek(HEADER_TYPE.itemsize)
        raw = f.read(num_fields * FIELD_DESC_TYPE.itemsize)
    return np.frombuffer(raw, dtype=FIELD_DESC_TYPE)


def _field_summary(reader):
    return ', '.join(f"{name} ({type(reader.handlers[name]).__name__})" for name in reader.field_names)


def _check_same_fields(readers, verb):
    first = readers[0]
    first_desc = _descriptors(first.file_name, first.num_fields)
    for other in readers[1:]:
        desc = _descriptors(other.file_name, other.num_fields)
        if first.field_names != other.field_names or [type(h) for h in first.handlers.values()] != \
                [type(h) for h in other.handlers.values()]:
            raise FieldMismatchError(
                f"cannot {verb} {first.file_name!r} and {other.file_name!r}: their fields differ: "
                f"{_field_summary(first)} vs {_field_summary(other)}; only files with the same "
                "field names and types (in the same order) can be combined")
        for a, b, name in zip(first_desc, desc, first.field_names):
            if a.tobytes() != b.tobytes():
                raise FieldMismatchError(
                    f"cannot {verb} {first.file_name!r} and {other.file_name!r}: field {name!r} has "
                    f"different settings: {first.handlers[name]!r} vs {other.handlers[name]!r}")


def _copy_range(src_fd, dst_fd, count, src_offset, dst_offset, state):
    while count > 0:
        if state.get('kernel', True):
            try:
                done = os.copy_file_range(src_fd, dst_fd, count, src_offset, dst_offset)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                                   errno.EPERM, errno.EBADF):
                    raise
                state['kernel'] = False
                continue
            if done == 0:
                raise FormatError(f"unexpected end of input at byte {src_offset}")
        else:
            data = os.pread(src_fd, min(count, 1 << 24), src_offset)
            if not data:
                raise FormatError(f"unexpected end of input at byte {src_offset}")
            view = memoryview(data)
            while view.nbytes:
                written = os.pwrite(dst_fd, view, dst_offset + len(data) - view.nbytes)
                view = view[written:]
            done = len(data)
        count -= done
        src_offset += done
        dst_offset += done


def _gather(reader, indices):
    """For samples ``indices`` of ``reader``: their allocations, grouped per sample.

    Returns (positions into the allocation table, segment start per sample, segment
    length per sample), allocations of a sample sorted by pointer.
    """
    table = reader.alloc_table
    sample_ids = np.asarray(table['sample_id'], dtype=np.int64)
    ptrs = np.asarray(table['ptr'])
    order = np.lexsort((ptrs, sample_ids))
    counts = np.bincount(sample_ids, minlength=reader.num_samples)[:reader.num_samples]
    starts = (np.cumsum(counts) - counts).astype(np.int64)
    lengths = counts[indices].astype(np.int64)
    total = int(lengths.sum())
    seg_start = np.cumsum(lengths) - lengths
    within = np.arange(total, dtype=np.int64) - np.repeat(seg_start, lengths)
    positions = order[np.repeat(starts[indices], lengths) + within]
    return positions, seg_start, lengths


def _pack(footprints, page_size, data_start):
    """Greedy packing in order: each allocation where the last ended, or on a new page."""
    count = footprints.size
    new_ptr = np.empty(count, dtype=np.uint64)
    if count == 0:
        return new_ptr, 0
    cumulative = np.concatenate([[0], np.cumsum(footprints, dtype=np.int64)])
    k0, page = 0, 0
    while k0 < count:
        k1 = int(np.searchsorted(cumulative, cumulative[k0] + page_size, side='right')) - 1
        k1 = max(k1, k0 + 1)
        new_ptr[k0:k1] = data_start + page * page_size + (cumulative[k0:k1] - cumulative[k0])
        k0, page = k1, page + 1
    return new_ptr, page


def _rewrite_pointers(rows, reader, old_ptrs, new_ptrs, seg_start, lengths, base):
    """Point the metadata ``rows`` (of one input) at the new allocations."""
    for name in reader.field_names:
        handler = reader.handlers[name]
        members = getattr(handler, 'pointer_names', ())
        for member in members:
            column = rows[name][member] if member else rows[name]
            values = np.asarray(column, dtype=np.uint64)
            result = np.zeros_like(values)
            found = np.zeros(values.shape, dtype=bool)
            for offset in range(int(lengths.max()) if lengths.size else 0):
                has = lengths > offset
                where = base + seg_start[has] + offset
                match = old_ptrs[where] == values[has]
                hit = np.flatnonzero(has)[match & ~found[has]]
                result[hit] = new_ptrs[base + seg_start[hit] + offset]
                found[hit] = True
            if not found.all():
                bad = int(np.flatnonzero(~found)[0])
                raise FormatError(f"{reader.file_name!r}: a sample's field {name!r} points at "
                                  f"{int(values[bad])}, which is not one of its allocations "
                                  f"(run `ffcv verify {reader.file_name}`)")
            if member:
                rows[name][member] = result
            else:
                rows[name] = result


def combine(selections, dst, *, overwrite=False, page_size=None, custom_handlers=None,
            temp_dir=None, verb='combine'):
    """Write the samples ``selections`` pick, in order, into a new file ``dst``.

    ``selections`` is a list of ``(path, indices)``; ``indices`` is None for every
    sample. All files must have the same fields. Returns the number of samples written.
    :func:`concat`, :func:`subset` and :func:`append` are built on it.
    """
    if not selections:
        raise ValueError(f"nothing to {verb}: give at least one file")
    readers = [Reader(path, custom_handlers=custom_handlers) for path, _ in selections]
    try:
        _check_same_fields(readers, verb)
        picked = []
        for reader, (path, indices) in zip(readers, selections):
            if indices is None:
                indices = np.arange(reader.num_samples, dtype=np.int64)
            else:
                indices = np.asarray(indices)
                if indices.ndim != 1 or (indices.size and not np.issubdtype(indices.dtype, np.integer)):
                    raise ValueError(f"indices into {path!r} must be a 1-D list of integers")
                indices = indices.astype(np.int64)
                bad = (indices < 0) | (indices >= reader.num_samples)
                if bad.any():
                    raise IndexError(f"index {int(indices[bad][0])} is out of range for {path!r}, "
                                     f"which has {reader.num_samples} samples (0..{reader.num_samples - 1})")
            for name in reader.field_names:   # every data pointer checked before a byte is copied
                reader.extents(name, indices)
            picked.append(indices)
        if page_size is None:
            page_size = max(r.page_size for r in readers)
        check_page_size(page_size)
        largest = max((int(r.alloc_table['size'].max()) for r in readers if r.alloc_table.size), default=0)
        if largest > page_size:
            raise ValueError(f"page_size {page_size} is smaller than the largest stored value "
                             f"({largest} bytes)")
        return _write(readers, picked, dst, page_size, overwrite, temp_dir)
    finally:
        for reader in readers:
            reader.close()


def _write(readers, picked, dst, page_size, overwrite, temp_dir):
    first = readers[0]
    row_type = first.metadata_type
    num_samples = int(sum(p.size for p in picked))
    meta_start = metadata_start(first.num_fields)
    data_start = align_up(meta_start + num_samples * row_type.itemsize, page_size)

    gathered = [_gather(r, p) for r, p in zip(readers, picked)]
    sizes = np.concatenate([np.asarray(r.alloc_table['size'])[g[0]] for r, g in zip(readers, gathered)]
                           ).astype(np.int64) if gathered else np.zeros(0, np.int64)
    old_ptrs = np.concatenate([np.asarray(r.alloc_table['ptr'])[g[0]] for r, g in zip(readers, gathered)]
                              ).astype(np.uint64)
    source = np.concatenate([np.full(g[0].size, k, np.int64) for k, g in enumerate(gathered)])
    out_sample = np.concatenate([np.repeat(np.arange(p.size, dtype=np.int64), g[2]) + offset
                                 for p, g, offset in zip(picked, gathered,
                                                         np.cumsum([0] + [p.size for p in picked]))])
    new_ptrs, num_pages = _pack(np.maximum(sizes, 1), page_size, data_start)
    if num_pages:
        alloc_table_ptr = data_start + num_pages * page_size
    else:
        alloc_table_ptr = meta_start + num_samples * row_type.itemsize

    out = AtomicFile(dst, overwrite=overwrite, temp_dir=temp_dir)
    fds = []
    try:
        os.ftruncate(out.fd, alloc_table_ptr)
        fds = [os.open(r.file_name, os.O_RDONLY) for r in readers]
        # copy runs of allocations that keep their relative positions in one piece
        if sizes.size:
            delta = new_ptrs.astype(np.int64) - old_ptrs.astype(np.int64)
            breaks = np.flatnonzero((np.diff(delta) != 0) | (np.diff(source) != 0)) + 1
            run_starts = np.concatenate([[0], breaks])
            run_ends = np.concatenate([breaks, [sizes.size]])
            state = {}
            ends = old_ptrs.astype(np.int64) + sizes
            for a, b in zip(run_starts.tolist(), run_ends.tolist()):
                start = int(old_ptrs[a])
                stop = int(ends[a:b].max())
                _copy_range(fds[source[a]], out.fd, stop - start, start, int(new_ptrs[a]), state)
        # metadata
        rows_out = np.zeros(num_samples, dtype=row_type)
        at, base = 0, 0
        for reader, indices, (positions, seg_start, lengths) in zip(readers, picked, gathered):
            rows = np.asarray(reader.metadata)[indices].copy()
            _rewrite_pointers(rows, reader, old_ptrs, new_ptrs, seg_start, lengths, base)
            rows_out[at:at + indices.size] = rows
            at += indices.size
            base += positions.size
        _pwrite(out.fd, rows_out.tobytes(), meta_start)
        _pwrite(out.fd, _descriptors(first.file_name, first.num_fields).tobytes(), HEADER_TYPE.itemsize)
        table = np.zeros(sizes.size, dtype=ALLOC_TABLE_TYPE)
        table['sample_id'] = out_sample
        table['ptr'] = new_ptrs
        table['size'] = sizes
        _pwrite(out.fd, table.tobytes(), alloc_table_ptr)
        os.ftruncate(out.fd, alloc_table_ptr + table.nbytes)
        header = np.zeros(1, dtype=HEADER_TYPE)
        header['version'] = CURRENT_VERSION
        header['num_fields'] = first.num_fields
        header['page_size'] = page_size
        header['num_samples'] = num_samples
        header['alloc_table_ptr'] = alloc_table_ptr
        _pwrite(out.fd, header.tobytes(), 0)
        out.commit()
    except BaseException:
        out.abort()
        raise
    finally:
        for fd in fds:
            os.close(fd)
    return num_samples


def _pwrite(fd, data, offset):
    view = memoryview(data)
    while view.nbytes:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def concat(paths, dst, *, overwrite=False, page_size=None, custom_handlers=None):
    """Concatenate ``.beton`` files with the same fields into ``dst``, samples in order.

    >>> concat(['train-a.beton', 'train-b.beton'], 'train.beton')       # doctest: +SKIP
    150000

    Raises :class:`FieldMismatchError` naming the difference when the files' fields
    differ. Returns the number of samples written.
    """
    paths = [os.fspath(p) for p in paths]
    return combine([(p, None) for p in paths], dst, overwrite=overwrite, page_size=page_size,
                   custom_handlers=custom_handlers, verb='concatenate')


def subset(path, indices, dst, *, overwrite=False, page_size=None, custom_handlers=None):
    """Write samples ``indices`` of ``path`` (in that order; repeats allowed) into ``dst``.

    >>> subset('train.beton', range(0, 50000, 10), 'train-10pct.beton')    # doctest: +SKIP
    5000
    """
    return combine([(os.fspath(path), np.fromiter(indices, dtype=np.int64)
                     if not isinstance(indices, np.ndarray) else indices)],
                   dst, overwrite=overwrite, page_size=page_size, custom_handlers=custom_handlers,
                   verb='subset')


def append(base, additions, dst, *, overwrite=False, page_size=None, custom_handlers=None):
    """A new file ``dst``: the samples of ``base`` followed by those of ``additions``.

    >>> append('train.beton', ['new-images.beton'], 'train-v2.beton')      # doctest: +SKIP
    51200

    ``additions`` is a path or a list of paths with the same fields as ``base`` (convert
    new samples first with :func:`ffcv_convert.convert`). ``dst`` may be ``base`` itself
    with ``overwrite=True``: it is replaced atomically, readers of the old file keep
    seeing the old one.
    """
    if isinstance(additions, (str, os.PathLike)):
        additions = [additions]
    paths = [os.fspath(base)] + [os.fspath(p) for p in additions]
    return combine([(p, None) for p in paths], dst, overwrite=overwrite, page_size=page_size,
                   custom_handlers=custom_handlers, verb='append')


def parse_indices(text, length=None):
    """Indices from text: ``'0:1000,2000:3000:2,7'`` (Python slices and single indices).

    >>> parse_indices('0:3,10,20:26:2')
    array([ 0,  1,  2, 10, 20, 22, 24])

    A slice without a stop (``'5000:'``) needs ``length``. Negative indices count from
    the end when ``length`` is given.
    """
    result = []
    for part in str(text).replace(' ', '').split(','):
        if not part:
            continue
        try:
            if ':' in part:
                pieces = [int(x) if x else None for x in part.split(':')]
                if len(pieces) > 3:
                    raise ValueError
                start, stop, step = (pieces + [None, None])[:3]
                if length is None and (stop is None or (start or 0) < 0 or (stop or 0) < 0):
                    raise ValueError(f"{part!r} needs the file's length")
                if length is None:
                    result.extend(range(start or 0, stop, step or 1))
                else:
                    result.extend(range(length)[slice(start, stop, step)])
            else:
                value = int(part)
                if value < 0 and length is not None:
                    value += length
                result.append(value)
        except ValueError as e:
            detail = f" ({e})" if str(e) else ""
            raise ValueError(f"cannot read indices {part!r}{detail}; "
                             "write e.g. 0:1000,2000:3000:2,7") from None
    return np.asarray(result, dtype=np.int64)
