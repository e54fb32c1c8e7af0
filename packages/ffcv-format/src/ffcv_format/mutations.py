"""Mutants of a valid `.beton` file, for fuzz tests of everything that reads one.

:func:`mutations` parses a small valid file with :class:`~ffcv_format.Reader` and lists
edits of every region of it (docs/format.md): the header, the field descriptors, the
metadata table, the data pages, the allocation table, truncations, and random byte flips,
drawn from a fixed seed. Each :class:`Mutation` is small (a list of byte patches and, for a
truncation, a length); :meth:`Mutation.apply` makes the mutant's bytes. :func:`mutants`
gives them as ``(name, kind, bytes)`` triples.

``kind`` says what a reader may do with the mutant:

- ``'structure'``: the edit breaks a rule of the format (or touches bytes no reader needs).
  A reader must raise a clean exception, or give exactly the data the original gives.
- ``'payload'``: the mutant is still a valid file whose data differ: metadata values that
  are data (``IntField``/``FloatField``), bytes inside an allocation (pixels, array
  elements, JSON and bytes contents), and the few structural edits that turn the file into
  another valid file no reader can tell from an intended one (they are named
  ``...(reinterpretation)``: an ``IntField`` read as a ``FloatField``, a raw image's width
  and height swapped, an array's shape permuted, ...). A reader may give other data, or
  raise; it must not crash, hang or allocate without bound.

Random flips are classified by the byte they hit (row padding, the bytes between the
metadata and the first page, and the unused ends of pages are 'structure': no reader reads
them, so the data must not change).

:func:`write_base_files` writes the small files the fuzz test mutates: one per field type.
"""
import json
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ['Mutation', 'mutations', 'mutants', 'select', 'write_base_files', 'BASE_FILES',
           'STRUCTURE', 'PAYLOAD']

STRUCTURE, PAYLOAD = 'structure', 'payload'

U64 = (1 << 64) - 1

# byte classes, for the random flips
_HEADER, _DESC, _META, _META_VALUE, _META_PAD, _GAP, _DATA, _SLACK, _TABLE = range(9)
_CLASS_NAMES = ['header', 'desc', 'meta', 'meta.value', 'meta.pad', 'gap', 'data', 'slack', 'table']
_CLASS_KIND = [STRUCTURE, STRUCTURE, STRUCTURE, PAYLOAD, STRUCTURE, STRUCTURE, PAYLOAD, STRUCTURE,
               STRUCTURE]

# type ids (docs/format.md)
_FLOAT, _INT, _RGB, _BYTES, _NDARRAY, _JSON, _TORCH, _IMAGE = range(8)
# type changes that give another valid file with the same layout: the data are read
# another way and no reader can tell
_REINTERPRETATIONS = {(_INT, _FLOAT), (_FLOAT, _INT), (_JSON, _BYTES), (_NDARRAY, _TORCH), (_TORCH, _NDARRAY)}


@dataclass
class Mutation:
    """One edit of a base file.

    ``name``: what was changed, e.g. ``'meta[s=3].image.data_ptr=2^56'``; ``group``: the
    family (``'meta.ptr.wild'``), used to spread a sample of mutations over all families;
    ``kind``: ``'structure'`` or ``'payload'`` (see the module docstring); ``patches``:
    ``(offset, bytes)`` written over the base; ``size``: the mutant's length (shorter: a
    truncation; longer: zero bytes appended, then the patches).
    """
    name: str
    group: str
    kind: str
    patches: list = field(default_factory=list)
    size: int = None

    def apply(self, data):
        """The mutant's bytes, from the base file's bytes."""
        out = bytearray(data if self.size is None else data[:self.size])
        if self.size is not None and self.size > len(data):
            out += bytes(self.size - len(data))
        for offset, patch in self.patches:
            out[offset:offset + len(patch)] = patch
        return bytes(out)


def _u(value, size=8):
    return int(value & ((1 << (8 * size)) - 1)).to_bytes(size, 'little')


def _pow(value):
    """A readable name for a value: 2^56, 2^64-1, or the number."""
    for k in range(8, 65):
        if value == 1 << k:
            return f'2^{k}'
        if value == (1 << k) - 1:
            return f'2^{k}-1'
    return str(value)


class _Layout:
    """Where the regions of a valid file are, from its Reader."""

    def __init__(self, path, data):
        from .reader import Reader
        self.data = data
        self.size = len(data)
        reader = Reader(path)
        try:
            self.page_size = int(reader.page_size)
            self.num_samples = int(reader.num_samples)
            self.num_fields = int(reader.header['num_fields'])
            self.metadata_start = int(reader.metadata_start)
            self.metadata_end = int(reader.metadata_end)
            self.alloc_table_ptr = int(reader.alloc_table_ptr)
            self.row_size = int(reader.metadata_type.itemsize)
            self.field_names = list(reader.field_names)
            self.handlers = dict(reader.handlers)
            descriptors = np.frombuffer(data, np.uint8, self.num_fields * 1041, 24).reshape(-1, 1041)
            self.type_ids = [int(t) for t in descriptors[:, 0]]
            table = np.array(reader.alloc_table)   # a copy
            # members of each field: (field, member, offset in the row, size, role)
            self.members = []
            for name in self.field_names:
                sub, offset = reader.metadata_type.fields[name][:2]
                handler = self.handlers[name]
                pointers = tuple(getattr(handler, 'pointer_names', ()))
                if sub.names is None:
                    role = 'ptr' if '' in pointers else 'value'
                    self.members.append((name, '', offset, sub.itemsize, role))
                else:
                    for member in sub.names:
                        m_dtype, m_offset = sub.fields[member][:2]
                        if member in pointers:
                            role = 'ptr'
                        elif member in ('size', 'mode', 'width', 'height'):
                            role = member
                        else:
                            role = 'other'
                        self.members.append((name, member, offset + m_offset, m_dtype.itemsize, role))
            self.values = {}   # (sample, field, member) -> int value
            rows = np.frombuffer(data, np.uint8, self.num_samples * self.row_size, self.metadata_start)
            rows = rows.reshape(self.num_samples, self.row_size)
            for s in range(self.num_samples):
                for name, member, offset, size, role in self.members:
                    self.values[s, name, member] = int.from_bytes(rows[s, offset:offset + size].tobytes(),
                                                                  'little')
        finally:
            reader.close()
        self.table = table
        self.entries = [(int(e['sample_id']), int(e['ptr']), int(e['size'])) for e in table]
        self.entry_of_ptr = {}
        for i, (_, ptr, _) in enumerate(self.entries):
            self.entry_of_ptr.setdefault(ptr, i)
        ps = self.page_size
        self.data_start = min(-(-self.metadata_end // ps) * ps, self.alloc_table_ptr)
        self.num_pages = (self.alloc_table_ptr - self.data_start) // ps if self.entries else 0
        self._classify()

    def row(self, s):
        return self.metadata_start + s * self.row_size

    def pointer_members(self):
        return [m for m in self.members if m[4] == 'ptr']

    def allocation(self, s, name, member):
        """(entry index, ptr, size) of the allocation a pointer of sample s points at."""
        ptr = self.values[s, name, member]
        i = self.entry_of_ptr.get(ptr)
        return (i, ptr, self.entries[i][2]) if i is not None else (None, ptr, 0)

    def page_of(self, ptr):
        return ptr // self.page_size

    def _classify(self):
        cls = np.full(self.size, _GAP, np.int8)
        cls[:24] = _HEADER
        cls[24:self.metadata_start] = _DESC
        cls[self.metadata_start:self.metadata_end] = _META_PAD
        for name, member, offset, size, role in self.members:
            c = _META_VALUE if role == 'value' else _META
            for s in range(self.num_samples):
                start = self.row(s) + offset
                cls[start:start + size] = c
        if self.entries:
            cls[self.data_start:self.alloc_table_ptr] = _SLACK
            for _, ptr, size in self.entries:
                cls[ptr:ptr + size] = _DATA
        cls[self.alloc_table_ptr:] = _TABLE
        self.classes = cls

    def region_bounds(self):
        """{class: array of offsets}, for the flips."""
        return {c: np.flatnonzero(self.classes == c) for c in range(len(_CLASS_NAMES))}


class _Builder:
    def __init__(self, layout):
        self.layout = layout
        self.out = []

    def add(self, name, group, kind, patches=(), size=None):
        self.out.append(Mutation(name, group, kind, list(patches), size))

    def at(self, name, group, kind, offset, value, width):
        self.add(name, group, kind, [(offset, _u(value, width))])


def _target_samples(L):
    """A few samples to edit: the first, the last, and one whose data is on a later page."""
    samples = [0, L.num_samples - 1] if L.num_samples else []
    ptrs = L.pointer_members()
    if ptrs and L.num_pages > 1:
        name, member = ptrs[0][:2]
        first_page = L.page_of(L.values[0, name, member])
        for s in range(L.num_samples):
            if L.page_of(L.values[s, name, member]) != first_page:
                samples.append(s)
                break
    if L.num_samples > 4:
        samples.append(L.num_samples // 2)
    if ptrs:   # a sample with an empty value (a zero-size allocation), when there is one
        name, member = ptrs[0][:2]
        empty = [s for s in range(L.num_samples) if L.allocation(s, name, member)[2] == 0]
        samples += empty[:1]
    return sorted(set(samples))


def _header(b, L):
    h = 'header'
    for v in (0, 1, 3, 0xFFFF):
        b.at(f'header.version={v}', f'{h}.version', STRUCTURE, 0, v, 2)
    for v in sorted({0, L.num_fields + 1, max(L.num_fields - 1, 0), 0xFFFF} - {L.num_fields}):
        b.at(f'header.num_fields={v}', f'{h}.num_fields', STRUCTURE, 2, v, 2)
    ps = L.page_size
    for v in (4096, 1, 3, 0, ps // 2, ps * 2, 1 << 31, 0xFFFFFFFF, ps + 1):
        if v != ps:
            b.at(f'header.page_size={_pow(v)}', f'{h}.page_size', STRUCTURE, 4, v, 4)
    n = L.num_samples
    for label, v in (('+1', n + 1), ('+2x', 2 * n), ('-1', n - 1), ('0', 0), ('/2', n // 2),
                     ('2^32', 1 << 32), ('2^40', 1 << 40), ('2^63', 1 << 63), ('2^64-1', U64)):
        if 0 <= v <= U64 and v != n:
            b.at(f'header.num_samples={label}', f'{h}.num_samples', STRUCTURE, 8, v, 8)
    p = L.alloc_table_ptr
    choices = [('0', 0), ('into_header', 8), ('into_metadata', L.metadata_start + 8),
               ('metadata_end', L.metadata_end), ('end', L.size), ('past_end', L.size + 24 * 1000),
               ('+1(misaligned)', p + 1), ('+8(misaligned)', p + 8), ('+24', p + 24), ('-24', p - 24),
               ('-1', p - 1), ('-page', p - L.page_size), ('2^63', 1 << 63), ('2^64-24', U64 - 23)]
    if L.entries:
        choices.append(('data_start', L.data_start))
    for label, v in choices:
        if 0 <= v <= U64 and v != p:
            b.at(f'header.alloc_table_ptr={label}', f'{h}.alloc_table_ptr', STRUCTURE, 16, v, 8)


def _descriptors(b, L):
    for f, name in enumerate(L.field_names):
        base = 24 + 1041 * f
        tid = L.type_ids[f]
        for other in (0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 254, 255):
            if other == tid:
                continue
            if (tid, other) in _REINTERPRETATIONS:
                kind, note = PAYLOAD, '(reinterpretation)'
            else:
                kind, note = STRUCTURE, ''
            b.at(f'desc[{name}].type_id={other}{note}', 'desc.type_id', kind, base, other, 1)
        nb = base + 1
        b.add(f'desc[{name}].name=empty', 'desc.name', STRUCTURE, [(nb, bytes(16))])
        b.add(f'desc[{name}].name=non_ascii', 'desc.name', STRUCTURE, [(nb, b'\xff' + bytes(15))])
        # another valid name: the data do not change
        b.add(f'desc[{name}].name=renamed', 'desc.name', STRUCTURE, [(nb, b'zz_renamed'.ljust(16, b'\0'))])
        b.add(f'desc[{name}].name=16_bytes', 'desc.name', STRUCTURE, [(nb, b'abcdefghijklmnop')])
        if f > 0:
            other = L.field_names[0].encode('ascii')
            b.add(f'desc[{name}].name=duplicate', 'desc.name', STRUCTURE, [(nb, other.ljust(16, b'\0'))])
        args = base + 17
        b.at(f'desc[{name}].args[1000]=1', 'desc.args', STRUCTURE, args + 1000, 1, 1)
        handler = L.handlers[name]
        if tid in (_NDARRAY, _TORCH):
            _ndarray_args(b, L, name, args, handler)
        if tid == _IMAGE:
            channels = int(handler.channels)
            for c in (0, 1, 2, 3, 4, 5, 255):
                if c != channels:
                    b.at(f'desc[{name}].channels={c}', 'desc.args', STRUCTURE, args, c, 1)
        if tid == _RGB:
            b.at(f'desc[{name}].args[0]=1', 'desc.args', STRUCTURE, args, 1, 1)


def _ndarray_args(b, L, name, args, handler):
    shape = list(handler.shape)
    dtype = np.dtype(handler.dtype)
    n = len(shape)
    g = 'desc.args'

    def shape_patch(new):
        raw = np.zeros(32, '<u8')
        raw[:len(new)] = new
        return [(args, raw.tobytes())]

    b.add(f'desc[{name}].shape[0]=0', g, STRUCTURE, shape_patch([0] + shape[1:]))
    b.add(f'desc[{name}].shape[0]*=2', g, STRUCTURE, shape_patch([shape[0] * 2] + shape[1:]))
    b.add(f'desc[{name}].shape[0]=2^40', g, STRUCTURE, shape_patch([1 << 40] + shape[1:]))
    b.add(f'desc[{name}].shape[0]=2^63', g, STRUCTURE, shape_patch([1 << 63] + shape[1:]))
    b.add(f'desc[{name}].shape+=(2,)', g, STRUCTURE, shape_patch(shape + [2]))
    if n < 32:   # trailing unit dimensions: the same bytes
        b.add(f'desc[{name}].shape=32_dims(reinterpretation)', g, PAYLOAD,
              shape_patch(shape + [1] * (32 - n)))
        b.add(f'desc[{name}].shape=32_dims_of_2', g, STRUCTURE, shape_patch(shape + [2] * (32 - n)))
    b.add(f'desc[{name}].shape=(2^32,2^32)', g, STRUCTURE, shape_patch([1 << 32, 1 << 32]))
    if n > 1 and shape[0] != shape[-1]:
        b.add(f'desc[{name}].shape=reversed(reinterpretation)', g, PAYLOAD, shape_patch(shape[::-1]))
    if n == 1 and shape[0] % 2 == 0:
        b.add(f'desc[{name}].shape=split(reinterpretation)', g, PAYLOAD, shape_patch([2, shape[0] // 2]))
    length_at = args + 256
    length = int.from_bytes(L.data[length_at:length_at + 8], 'little')
    for label, v in (('0', 0), ('-1', length - 1), ('+1', length + 1), ('760', 760), ('761', 761),
                     ('1024', 1024), ('2^63', 1 << 63), ('2^64-1', U64)):
        b.at(f'desc[{name}].type_length={label}', g, STRUCTURE, length_at, v, 8)

    def dtype_patch(text):
        raw = text.encode('ascii')
        return [(length_at, _u(len(raw))), (args + 264, raw.ljust(max(length, len(raw)), b'\0'))]

    def desc(d):
        return json.dumps(np.dtype(d).descr)

    size = dtype.itemsize
    same = {1: ['|i1', '|u1', '|b1'], 2: ['<i2', '<u2', '<f2', '>i2'], 4: ['<i4', '<u4', '<f4', '>f4'],
            8: ['<i8', '<u8', '<f8', '>f8']}.get(size, [])
    for d in same:
        if np.dtype(d) != dtype:
            b.add(f'desc[{name}].dtype={d}(reinterpretation)', g, PAYLOAD, dtype_patch(desc(d)))
            break
    for d in ('<f8' if size != 8 else '<f4', '<c16', '|u1' if size != 1 else '<u2'):
        b.add(f'desc[{name}].dtype={d}', g, STRUCTURE, dtype_patch(desc(d)))
    b.add(f'desc[{name}].dtype=object', g, STRUCTURE, dtype_patch('[["", "|O"]]'))
    b.add(f'desc[{name}].dtype=two_fields', g, STRUCTURE, dtype_patch('[["a", "<f4"], ["b", "<f4"]]'))
    b.add(f'desc[{name}].dtype=subarray', g, STRUCTURE, dtype_patch('[["", "<f4", [1024, 1024]]]'))
    b.add(f'desc[{name}].dtype=V2^30', g, STRUCTURE, dtype_patch('[["", "|V1073741824"]]'))
    b.add(f'desc[{name}].dtype=not_json', g, STRUCTURE, dtype_patch('[["", "<f4"'))
    b.add(f'desc[{name}].dtype=not_ascii', g, STRUCTURE, [(args + 264, b'\xff\xfe')])
    b.add(f'desc[{name}].dtype=string', g, STRUCTURE, dtype_patch('"<f4"'))


def _pointer_values(L, s, name, member):
    """(label, value) pairs for a data pointer of sample s."""
    _, ptr, size = L.allocation(s, name, member)
    ps = L.page_size
    page_start = ptr // ps * ps
    values = [('0', 0), ('into_header', 8), ('into_descriptors', 24 + 17),
              ('into_metadata', L.metadata_start + 1), ('own_row', L.row(s)),
              ('metadata_end-1', L.metadata_end - 1),
              ('alloc_table', L.alloc_table_ptr), ('alloc_table+24', L.alloc_table_ptr + 24),
              ('end-1', L.size - 1), ('end', L.size), ('past_end', L.size + 16 * ps),
              ('2^32', 1 << 32), ('2^56', 1 << 56), ('2^62', 1 << 62), ('2^63', 1 << 63),
              ('2^64-1', U64), ('2^64-8', U64 - 7), ('+1', ptr + 1), ('-1', ptr - 1),
              ('middle', ptr + max(1, size // 2)), ('page_start', page_start),
              ('page_end-1', page_start + ps - 1), ('next_page', page_start + ps)]
    if L.data_start > L.metadata_end:
        values.append(('gap', L.data_start - 1))
    # the unused end of its page
    used = max((p + max(z, 1) for _, p, z in L.entries if p // ps == ptr // ps), default=ptr)
    if used < page_start + ps:
        values.append(('page_slack', used))
    # another sample's allocation of this field: the same size when there is one
    others = [t for t in range(L.num_samples) if t != s]
    same = [t for t in others if L.allocation(t, name, member)[2] == size]
    for label, pool in (('other_sample', same or others),):
        if pool:
            t = pool[len(pool) // 2]
            values.append((f'{label}(s={t})', L.values[t, name, member]))
    if L.entries:
        last = max(p for _, p, _ in L.entries)
        if last != ptr:
            values.append(('last_allocation', last))
    return [(label, v) for label, v in values if 0 <= v <= U64 and v != ptr]


def _wild(label):
    return label in ('0', 'past_end', '2^32', '2^56', '2^62', '2^63', '2^64-1', '2^64-8', 'end', 'end-1')


def _metadata(b, L, rng):
    samples = _target_samples(L)
    for name, member, offset, width, role in L.members:
        where = f'{name}.{member}' if member else name
        handler = L.handlers[name]
        tid = L.type_ids[L.field_names.index(name)]
        for s in samples:
            at = L.row(s) + offset
            old = L.values[s, name, member]
            tag = f'meta[s={s}].{where}'
            if role == 'ptr':
                for label, v in _pointer_values(L, s, name, member):
                    group = 'meta.ptr.wild' if _wild(label) else 'meta.ptr.inside'
                    b.at(f'{tag}={label}', group, STRUCTURE, at, v, width)
            elif role == 'size':
                _, ptr, _ = L.allocation(s, name, 'ptr')
                for label, v in (('0', 0), ('-1', old - 1), ('+1', old + 1), ('2x', 2 * old + 1),
                                 ('page', L.page_size), ('page+1', L.page_size + 1),
                                 ('file', L.size), ('2^32', 1 << 32), ('2^40', 1 << 40),
                                 ('2^62', 1 << 62), ('2^63', 1 << 63), ('2^64-1', U64),
                                 ('wrap', (1 << 64) - ptr + 16)):
                    if 0 <= v <= U64 and v != old:
                        b.at(f'{tag}={label}', 'meta.size', STRUCTURE, at, v, width)
            elif role == 'mode':
                for v in (0, 1, 2, 3, 255):
                    if v != old:
                        b.at(f'{tag}={v}', 'meta.mode', STRUCTURE, at, v, width)
            elif role in ('width', 'height'):
                for label, v in (('0', 0), ('65535', 65535), ('+1', old + 1), ('-1', old - 1),
                                 ('2x', 2 * old), ('1', 1)):
                    if 0 <= v <= 0xFFFF and v != old:
                        b.at(f'{tag}={label}', 'meta.dims', STRUCTURE, at, v, width)
            elif role == 'value':
                values = [('0', 0), ('+1', old + 1), ('neg', (-_signed(old)) & U64),
                          ('2^63', 1 << 63), ('2^64-1', U64)]
                if tid == _FLOAT:
                    values += [('nan', 0x7FF8000000000000), ('inf', 0x7FF0000000000000),
                               ('-0.0', 1 << 63), ('snan', 0x7FF0000000000001)]
                for label, v in values:
                    if (v & U64) != old:
                        b.at(f'{tag}={label}', 'meta.value', PAYLOAD, at, v & U64, width)
        # image: width and height together
        if role == 'width':
            h_off = [m for m in L.members if m[0] == name and m[4] == 'height'][0][2]
            mode_off = [m for m in L.members if m[0] == name and m[4] == 'mode'][0][2]
            for s in samples:
                w, h = L.values[s, name, 'width'], L.values[s, name, 'height']
                mode = L.values[s, name, 'mode']
                row = L.row(s)
                if w != h:
                    # raw pixels of a swapped size are the same bytes: another valid file
                    kind, note = (PAYLOAD, '(reinterpretation)') if mode == 1 else (STRUCTURE, '')
                    b.add(f'meta[s={s}].{name}.swap_width_height{note}', 'meta.dims', kind,
                          [(row + offset, _u(h, 2)), (row + h_off, _u(w, 2))])
                b.add(f'meta[s={s}].{name}.width=height=65535', 'meta.dims', STRUCTURE,
                      [(row + offset, _u(65535, 2)), (row + h_off, _u(65535, 2))])
                b.add(f'meta[s={s}].{name}.width=height=0', 'meta.dims', STRUCTURE,
                      [(row + offset, _u(0, 2)), (row + h_off, _u(0, 2))])
            # every sample
            b.add(f'meta[all].{name}.width=height=65535', 'meta.all', STRUCTURE,
                  [p for s in range(L.num_samples) for p in
                   ((L.row(s) + offset, _u(65535, 2)), (L.row(s) + h_off, _u(65535, 2)))])
            modes = {L.values[s, name, 'mode'] for s in range(L.num_samples)}
            for v in (0, 1, 2, 3):
                if modes != {v}:
                    b.add(f'meta[all].{name}.mode={v}', 'meta.all', STRUCTURE,
                          [(L.row(s) + mode_off, _u(v, 1)) for s in range(L.num_samples)])
        if role == 'ptr':
            for label, v in (('2^56', 1 << 56), ('2^62', 1 << 62), ('0', 0),
                             ('alloc_table', L.alloc_table_ptr)):
                b.add(f'meta[all].{where}={label}', 'meta.all', STRUCTURE,
                      [(L.row(s) + offset, _u(v, width)) for s in range(L.num_samples)])
            # every sample points at sample 0's data
            v0 = L.values[0, name, member]
            b.add(f'meta[all].{where}=sample0', 'meta.all', STRUCTURE,
                  [(L.row(s) + offset, _u(v0, width)) for s in range(1, L.num_samples)])
        if role == 'size':
            for label, v in (('2^40', 1 << 40), ('page', L.page_size), ('0', 0)):
                b.add(f'meta[all].{where}={label}', 'meta.all', STRUCTURE,
                      [(L.row(s) + offset, _u(v, width)) for s in range(L.num_samples)])
        del handler


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _allocation_table(b, L):
    if not L.entries:
        b.add('alloc.append_entry(no_pages)', 'alloc.entry', STRUCTURE,
              [(L.size, _u(0) + _u(L.metadata_end) + _u(8))], size=L.size + 24)
        return
    ps = L.page_size
    ptrs = L.pointer_members()
    name, member = ptrs[0][:2]
    targets = []
    for s in _target_samples(L):
        i, _, _ = L.allocation(s, name, member)
        if i is not None:
            targets.append((s, i))
    n = len(L.entries)
    for s, i in targets:
        sid, ptr, size = L.entries[i]
        at = L.alloc_table_ptr + 24 * i
        tag = f'alloc[{i}](s={s})'
        nxt = L.entries[i + 1][1] if i + 1 < n else None
        prv = L.entries[i - 1][1] if i > 0 else None
        page_end = ptr // ps * ps + ps
        for label, v in (('0', 0), ('2^64-1', U64), ('2^63', 1 << 63), ('+1', ptr + 1), ('-1', ptr - 1),
                         ('into_metadata', L.metadata_start), ('end', L.size), ('2^56', 1 << 56),
                         ('next', nxt), ('prev', prv), ('crossing_page', page_end - max(size // 2, 1))):
            if v is not None and 0 <= v <= U64 and v != ptr:
                b.at(f'{tag}.ptr={label}', 'alloc.ptr', STRUCTURE, at + 8, v, 8)
        for label, v in (('0', 0), ('+1', size + 1), ('-1', size - 1), ('2^64-1', U64),
                         ('wrap_to_0', (1 << 64) - ptr), ('2^40', 1 << 40), ('page+1', ps + 1),
                         ('overlap_next', nxt - ptr + 1 if nxt is not None else None),
                         ('crossing_page', page_end - ptr + 1)):
            if v is not None and 0 <= v <= U64 and v != size:
                b.at(f'{tag}.size={label}', 'alloc.size', STRUCTURE, at + 16, v, 8)
        for label, v in (('other', (sid + 1) % max(L.num_samples, 1)), ('num_samples', L.num_samples),
                         ('2^64-1', U64)):
            if v != sid:
                b.at(f'{tag}.sample_id={label}', 'alloc.sample_id', STRUCTURE, at, v, 8)
        entry = L.data[at:at + 24]
        if i + 1 < n:
            nxt_at = at + 24
            b.add(f'{tag}.swap_with_next(out_of_order)', 'alloc.order', STRUCTURE,
                  [(at, L.data[nxt_at:nxt_at + 24]), (nxt_at, entry)])
            b.add(f'{tag}.copied_over_next(duplicate)', 'alloc.entry', STRUCTURE, [(nxt_at, entry)])
        b.add(f'{tag}=zeros', 'alloc.entry', STRUCTURE, [(at, bytes(24))])
    table = L.data[L.alloc_table_ptr:]
    reversed_table = b''.join(table[k:k + 24] for k in range(len(table) - 24, -1, -24))
    b.add('alloc.reversed(out_of_order)', 'alloc.order', STRUCTURE, [(L.alloc_table_ptr, reversed_table)])
    b.add('alloc.all_sizes=2^64-1', 'alloc.all', STRUCTURE,
          [(L.alloc_table_ptr + 24 * k + 16, _u(U64)) for k in range(n)])
    for label, at in (('ptrs', 8), ('sizes', 16), ('sample_ids', 0)):
        b.add(f'alloc.all_{label}=0', 'alloc.all', STRUCTURE,
              [(L.alloc_table_ptr + 24 * k + at, _u(0)) for k in range(n)])
    last = L.data[-24:]
    b.add('alloc.append_copy_of_last', 'alloc.entry', STRUCTURE, [(L.size, last)], size=L.size + 24)
    b.add('alloc.append_zeros', 'alloc.entry', STRUCTURE, [], size=L.size + 24)
    # one more entry, of a sample that does not exist, inside the slack of the last page
    b.add('alloc.append_unknown_sample', 'alloc.entry', STRUCTURE,
          [(L.size, _u(L.num_samples + 7) + _u(L.alloc_table_ptr - 1) + _u(1))], size=L.size + 24)


def _truncations(b, L, rng):
    ps = L.page_size
    offsets = {0: 'empty', 1: '1', 23: 'header-1', 24: 'header', 25: 'header+1',
               24 + 1041 - 1: 'desc0-1', L.metadata_start: 'metadata_start',
               L.metadata_start + 1: 'metadata_start+1',
               (L.metadata_start + L.metadata_end) // 2: 'mid_metadata',
               L.metadata_end - 1: 'metadata_end-1', L.metadata_end: 'metadata_end',
               L.alloc_table_ptr - 1: 'alloc_table-1', L.alloc_table_ptr: 'alloc_table',
               L.alloc_table_ptr + 1: 'alloc_table+1', L.alloc_table_ptr + 24: 'alloc_table+24',
               L.size - 24: 'end-24', L.size - 1: 'end-1', L.size - 8: 'end-8'}
    if L.entries:
        offsets[L.data_start] = 'data_start'
        offsets[L.data_start + ps // 2] = 'mid_page0'
        offsets[L.data_start + ps] = 'page1'
        offsets[L.data_start + ps - 1] = 'page1-1'
        last_end = max(p + z for _, p, z in L.entries)
        offsets[last_end] = 'last_allocation_end'
        offsets[last_end - 1] = 'last_allocation_end-1'
    for k, off in enumerate(sorted(int(x) for x in rng.integers(1, L.size, 10))):
        offsets.setdefault(off, f'random{k}')
    for off, label in sorted(offsets.items()):
        if 0 <= off < L.size:
            region = _CLASS_NAMES[L.classes[off]] if off < L.size else 'end'
            b.add(f'truncate@{off}({label},{region})', 'truncate', STRUCTURE, size=off)
    b.add('append_1_byte', 'append', STRUCTURE, size=L.size + 1)
    b.add('append_page', 'append', STRUCTURE, size=L.size + ps)


def _flips(b, L, rng, per_region):
    bounds = L.region_bounds()
    for c, offsets in bounds.items():
        if not offsets.size:
            continue
        picks = rng.choice(offsets, size=min(per_region, offsets.size), replace=False)
        for off in sorted(int(o) for o in picks):
            old = L.data[off]
            if rng.random() < 0.5:
                new = old ^ (1 << int(rng.integers(0, 8)))
                how = 'bit'
            else:
                new = old ^ int(rng.integers(1, 256))
                how = 'byte'
            b.add(f'flip_{how}@{off}({_CLASS_NAMES[c]}):{old:#04x}->{new:#04x}', f'flip.{_CLASS_NAMES[c]}',
                  _CLASS_KIND[c], [(off, bytes([new]))])
    # a burst of flips in each region at once
    for c, offsets in bounds.items():
        if offsets.size < 8:
            continue
        picks = sorted(int(o) for o in rng.choice(offsets, size=8, replace=False))
        patches = [(off, bytes([L.data[off] ^ int(rng.integers(1, 256))])) for off in picks]
        b.add(f'flip_8_bytes@{picks[0]}..{picks[-1]}({_CLASS_NAMES[c]})', f'flip.{_CLASS_NAMES[c]}',
              _CLASS_KIND[c], patches)


def mutations(path, seed=0, flips_per_region=12):
    """Every mutation of the valid file at ``path`` (a list of :class:`Mutation`).

    The same file and seed give the same list, in the same order.
    """
    path = os.fspath(path)
    with open(path, 'rb') as f:
        data = f.read()
    layout = _Layout(path, data)
    rng = np.random.default_rng([seed, zlib.crc32(data)])
    b = _Builder(layout)
    _header(b, layout)
    _descriptors(b, layout)
    _metadata(b, layout, rng)
    _allocation_table(b, layout)
    _truncations(b, layout, rng)
    _flips(b, layout, rng, flips_per_region)
    seen, out = set(), []
    for m in b.out:
        if m.name not in seen and (m.patches or m.size is not None):
            seen.add(m.name)
            out.append(m)
    return out


def mutants(path, seed=0, **kwargs):
    """The mutants of the valid file at ``path``, one at a time, as ``(name, kind, bytes)``."""
    with open(path, 'rb') as f:
        data = f.read()
    for m in mutations(path, seed, **kwargs):
        yield m.name, m.kind, m.apply(data)


def select(per_base, count, seed=0):
    """``count`` mutations spread over bases and families: ``per_base`` maps a base name to
    its list of mutations; the result is a list of ``(base, mutation)``, drawn round-robin
    over (base, group) with a fixed seed (every family of every base first, then more)."""
    rng = np.random.default_rng(seed)
    queues = []
    for base in sorted(per_base):
        groups = {}
        for m in per_base[base]:
            groups.setdefault(m.group, []).append(m)
        for group in sorted(groups):
            items = groups[group]
            order = rng.permutation(len(items))
            queues.append((base, [items[k] for k in order]))
    order = rng.permutation(len(queues))
    queues = [queues[k] for k in order]
    chosen = []
    depth = 0
    while len(chosen) < count and any(depth < len(items) for _, items in queues):
        for base, items in queues:
            if depth < len(items) and len(chosen) < count:
                chosen.append((base, items[depth]))
        depth += 1
    return chosen


# ------------------------------------------------------------------ the base files

def _noise_image(rng, height, width, channels, smooth=True):
    """An image that JPEG compresses poorly (so a few dozen fill several pages)."""
    image = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    if smooth:
        y, x = np.mgrid[0:height, 0:width]
        image = (image // 2 + ((x * 3 + y * 5) % 128)[:, :, None]).astype(np.uint8)
    return image


def _samples_scalars(rng, n):
    return [(int(rng.integers(-1000, 1000)), float(rng.normal())) for _ in range(n)]


def _samples_bytes(rng, n):
    out = []
    for i in range(n):
        if i % 7 == 3:
            size = 0                       # empty values: zero-size allocations
        elif i in (9, 23):
            size = 1_200_000               # does not fit next to earlier samples: a new page
        else:
            size = int(rng.integers(1, 3000))
        out.append((rng.integers(0, 256, size, dtype=np.uint8).tobytes(), i))
    return out


def _samples_json(rng, n):
    out = []
    for i in range(n):
        value = {'id': i, 'name': f'sample-{i}', 'tags': [int(t) for t in rng.integers(0, 9, i % 5)],
                 'score': round(float(rng.normal()), 4),
                 'nested': {'ok': bool(i % 2), 'text': 'x' * (i * 13 % 97)}}
        if i in (11, 30):
            value['blob'] = 'y' * (1_300_000 - 400_000 * (i == 30))   # big ones: a second page
        out.append((value, i))
    return out


BASE_FILES = {
    # name: (fields factory, samples factory, number of samples)
    'scalars': (lambda: {'label': _ff().IntField(), 'value': _ff().FloatField()}, _samples_scalars, 50),
    'bytes': (lambda: {'blob': _ff().BytesField(), 'label': _ff().IntField()}, _samples_bytes, 40),
    'json': (lambda: {'meta': _ff().JSONField(), 'label': _ff().IntField()}, _samples_json, 40),
    'ndarray': (lambda: {'x': _ff().NDArrayField(np.dtype('<f4'), (128, 128)), 'label': _ff().IntField()},
                lambda rng, n: [(rng.normal(size=(128, 128)).astype('<f4'), i) for i in range(n)], 40),
    'torch': (lambda: {'t': _torch_field((3, 40, 50)), 'label': _ff().IntField()},
              lambda rng, n: [(_torch_tensor(rng, (3, 40, 50)), i) for i in range(n)], 40),
    'rgb_raw': (lambda: {'image': _ff().RGBImageField(write_mode='raw'), 'label': _ff().IntField()},
                lambda rng, n: [(_noise_image(rng, 120, 160, 3), i) for i in range(n)], 48),
    'rgb_jpg': (lambda: {'image': _ff().RGBImageField(write_mode='jpg', jpeg_quality=95),
                         'label': _ff().IntField()},
                lambda rng, n: [(_noise_image(rng, 150, 170, 3, smooth=False), i) for i in range(n)], 72),
    'rgb_proportion': (lambda: {'label': _ff().IntField(),
                                'image': _ff().RGBImageField(write_mode='proportion',
                                                             compress_probability=0.5)},
                       lambda rng, n: [(i, _noise_image(rng, 64, 80, 3)) for i in range(n)], 40),
    'gray_jpg': (lambda: {'image': _ff().ImageField(write_mode='jpg', channels=1, jpeg_quality=95),
                          'label': _ff().IntField()},
                 lambda rng, n: [(_noise_image(rng, 240, 256, 1, smooth=False), i) for i in range(n)], 40),
    'gray_raw': (lambda: {'image': _ff().ImageField(write_mode='raw', channels=1), 'label': _ff().IntField()},
                 lambda rng, n: [(_noise_image(rng, 200, 270, 1), i) for i in range(n)], 48),
    'rgba_png': (lambda: {'image': _ff().ImageField(write_mode='png', channels=4), 'label': _ff().IntField()},
                 lambda rng, n: [(_noise_image(rng, 72, 60, 4, smooth=False), i) for i in range(n)], 40),
}


def _ff():
    import ffcv_format
    return ffcv_format


def _torch_field(shape):
    import torch
    return _ff().TorchTensorField(torch.int16, shape)


def _torch_tensor(rng, shape):
    import torch
    return torch.from_numpy(rng.integers(-30000, 30000, shape).astype(np.int16))


def write_base_files(folder, names=None, page_size=1 << 21, seed=0):
    """Write the base files of the fuzz test into ``folder``: ``{name: path}``.

    One file per field type (``BASE_FILES``), a few dozen samples each, pages of 2 MiB (the
    smallest the format allows); most have their data on several pages. Written with one
    worker, so the same seed gives the same bytes.
    """
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for name in (names or BASE_FILES):
        fields, make_samples, n = BASE_FILES[name]
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        path = os.path.join(folder, f'{name}.beton')
        _ff().DatasetWriter(path, fields(), page_size=page_size, num_workers=1,
                            progress=False).from_indexed_dataset(make_samples(rng, n), chunksize=8)
        paths[name] = path
    return paths


def _main():   # python -m ffcv_format.mutations FOLDER: write the base files and count mutations
    import sys
    folder = sys.argv[1] if len(sys.argv) > 1 else 'fuzz_bases'
    for name, path in write_base_files(folder).items():
        found = mutations(path)
        kinds = {k: sum(m.kind == k for m in found) for k in (STRUCTURE, PAYLOAD)}
        print(f'{name:16s} {os.path.getsize(path):>9d} bytes  {len(found)} mutations {kinds}')


if __name__ == '__main__':
    _main()
