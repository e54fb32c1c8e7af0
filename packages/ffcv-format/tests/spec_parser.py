"""An independent parser of `.beton` files, written from docs/format.md alone.

It deliberately does not import `ffcv_format`: it re-implements the byte layout
(header, field descriptors, metadata rows with their alignment rule, allocation
table, field encodings) with `struct` and numpy, decodes JPEG/PNG with OpenCV,
and checks the structural rules of the spec. Any violation raises
``AssertionError`` with a message that says what is wrong and where.

Usage::

    b = parse('file.beton')
    b.fields            # list of FieldDesc
    b.samples[i][name]  # decoded value
    b.meta[i][name]     # raw metadata (dict for structs, number for scalars)
    b.allocations       # list of Allocation(sample_id, ptr, size), file order
"""

import json
import struct
from collections import namedtuple

import numpy as np

try:  # cv2 is only needed to decode JPEG / PNG images
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None

HEADER_SIZE = 24
DESCRIPTOR_SIZE = 1041
NAME_SIZE = 16
ARGS_SIZE = 1024
ALLOC_ENTRY_SIZE = 24
MIN_PAGE_SIZE = 2 ** 21
MAX_PAGE_SIZE = 2 ** 31

FLOAT, INT, RGB_IMAGE, BYTES, NDARRAY, JSON, TORCH_TENSOR, IMAGE = range(8)
CUSTOM = 255

TYPE_NAMES = {
    FLOAT: 'FloatField', INT: 'IntField', RGB_IMAGE: 'RGBImageField',
    BYTES: 'BytesField', NDARRAY: 'NDArrayField', JSON: 'JSONField',
    TORCH_TENSOR: 'TorchTensorField', IMAGE: 'ImageField', CUSTOM: 'custom',
}

# (size, alignment) of each type's metadata member
META_LAYOUT = {
    FLOAT: (8, 8), INT: (8, 8), RGB_IMAGE: (13, 1), BYTES: (16, 1),
    NDARRAY: (8, 8), JSON: (16, 1), TORCH_TENSOR: (8, 8), IMAGE: (13, 1),
}

MODE_JPEG, MODE_RAW, MODE_PNG = 0, 1, 2

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# PNG colour type expected for each channel count
PNG_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}

Allocation = namedtuple('Allocation', 'sample_id ptr size')


class FieldDesc:
    """One field descriptor, plus what the parser derived from it."""

    def __init__(self, index, type_id, name, args):
        self.index = index
        self.type_id = type_id
        self.name = name
        self.args = args          # the raw 1024 argument bytes
        self.offset = None        # member offset inside a metadata row
        self.meta_size, self.meta_align = META_LAYOUT[type_id]
        self.dtype = None         # NDArray / TorchTensor
        self.shape = None
        self.channels = None      # images

    @property
    def type_name(self):
        return TYPE_NAMES[self.type_id]

    def __repr__(self):
        extra = ''
        if self.dtype is not None:
            extra = f', dtype={self.dtype}, shape={self.shape}'
        if self.channels is not None:
            extra = f', channels={self.channels}'
        return (f'FieldDesc({self.name!r}, {self.type_name}, '
                f'offset={self.offset}{extra})')


class Beton:
    """Everything parsed out of one file."""

    def __init__(self):
        self.path = None
        self.file_size = None
        self.version = None
        self.num_fields = None
        self.page_size = None
        self.num_samples = None
        self.alloc_table_ptr = None
        self.fields = []
        self.row_size = None
        self.metadata_ptr = None
        self.metadata_end = None
        self.data_start_min = None   # first multiple of page_size >= metadata_end
        self.allocations = []
        self.pages = []              # sorted page indices holding allocations
        self.meta = []               # per sample: {name: raw metadata}
        self.samples = []            # per sample: {name: decoded value}

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def column(self, name):
        return [s[name] for s in self.samples]


def _check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# --------------------------------------------------------------------------
# Metadata row layout (the C-struct rule of the spec, reimplemented)
# --------------------------------------------------------------------------

def row_layout(members):
    """`members`: list of (size, align). Returns (offsets, row_size).

    Each member goes at the next offset that is a multiple of its alignment;
    the row size is the end of the last member rounded up to a multiple of
    the largest alignment among the members.
    """
    offsets = []
    pos = 0
    max_align = 1
    for size, align in members:
        if pos % align:
            pos += align - pos % align
        offsets.append(pos)
        pos += size
        max_align = max(max_align, align)
    if pos % max_align:
        pos += max_align - pos % max_align
    return offsets, pos


# --------------------------------------------------------------------------
# Descriptors
# --------------------------------------------------------------------------

def _parse_name(raw, index):
    _check(len(raw) == NAME_SIZE, 'internal: name length')
    end = raw.find(b'\0')
    if end < 0:
        end = NAME_SIZE
    name = raw[:end]
    _check(len(name) >= 1, f'field {index}: empty field name')
    _check(all(c == 0 for c in raw[end:]),
           f'field {index}: name {raw!r} has non-zero bytes after its terminator')
    _check(all(c < 128 for c in name),
           f'field {index}: name {name!r} is not ASCII')
    return name.decode('ascii')


def _parse_ndarray_args(f):
    args = f.args
    dims = struct.unpack_from('<32Q', args, 0)
    shape = []
    for i, d in enumerate(dims):
        if d == 0:
            _check(all(x == 0 for x in dims[i:]),
                   f'field {f.name!r}: shape entries {dims} have a nonzero '
                   f'dimension after a zero')
            break
        shape.append(d)
    (type_length,) = struct.unpack_from('<Q', args, 256)
    _check(264 + type_length <= ARGS_SIZE,
           f'field {f.name!r}: type_length {type_length} runs past the '
           f'1024 argument bytes')
    descr_raw = args[264:264 + type_length]
    _check(all(c < 128 for c in descr_raw),
           f'field {f.name!r}: dtype description {descr_raw!r} is not ASCII')
    try:
        descr = json.loads(descr_raw.decode('ascii'))
    except ValueError as e:
        raise AssertionError(f'field {f.name!r}: dtype description '
                             f'{descr_raw!r} is not JSON: {e}')
    _check(isinstance(descr, list) and len(descr) == 1
           and isinstance(descr[0], list) and len(descr[0]) == 2
           and isinstance(descr[0][1], str),
           f'field {f.name!r}: dtype description {descr!r} is not the descr '
           f'of a one-field dtype')
    try:
        dtype = np.dtype(descr[0][1])
    except TypeError as e:
        raise AssertionError(f'field {f.name!r}: bad dtype {descr!r}: {e}')
    _check(dtype.itemsize > 0 and not dtype.hasobject,
           f'field {f.name!r}: unusable dtype {dtype}')
    _check(all(c == 0 for c in args[264 + type_length:]),
           f'field {f.name!r}: argument bytes after the dtype description '
           f'are not zero')
    f.shape = tuple(int(d) for d in shape)
    f.dtype = dtype
    f.descr_json = descr_raw.decode('ascii')


def _parse_image_args(f):
    ch = f.args[0]
    _check(ch in (1, 2, 3, 4),
           f'field {f.name!r}: ImageField channels = {ch}, not 1..4')
    _check(all(c == 0 for c in f.args[1:]),
           f'field {f.name!r}: ImageField reserved argument bytes are not zero')
    f.channels = ch


def _parse_descriptors(buf, num_fields):
    fields = []
    for i in range(num_fields):
        base = HEADER_SIZE + DESCRIPTOR_SIZE * i
        type_id = buf[base]
        name = _parse_name(buf[base + 1:base + 1 + NAME_SIZE], i)
        args = bytes(buf[base + 17:base + DESCRIPTOR_SIZE])
        _check(type_id != CUSTOM,
               f'field {i} ({name!r}): custom field (type 255): this parser '
               f'cannot decode it')
        _check(type_id in META_LAYOUT,
               f'field {i} ({name!r}): unknown type id {type_id}')
        f = FieldDesc(i, type_id, name, args)
        if type_id in (FLOAT, INT, RGB_IMAGE, BYTES, JSON):
            _check(all(c == 0 for c in args),
                   f'field {name!r}: {f.type_name} arguments are not all zero')
        if type_id == RGB_IMAGE:
            f.channels = 3
        elif type_id == IMAGE:
            _parse_image_args(f)
        elif type_id in (NDARRAY, TORCH_TENSOR):
            _parse_ndarray_args(f)
        fields.append(f)
    names = [f.name for f in fields]
    _check(len(set(names)) == len(names), f'repeated field names: {names}')
    return fields


# --------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------

def _decode_image(f, sid, mode, width, height, data):
    where = f'sample {sid}, field {f.name!r}'
    ch = f.channels
    _check(width >= 1 and height >= 1,
           f'{where}: image size {width}x{height} is empty')
    if mode == MODE_RAW:
        _check(len(data) == width * height * ch,
               f'{where}: raw image allocation is {len(data)} bytes, expected '
               f'{height}*{width}*{ch} = {width * height * ch}')
        return np.frombuffer(data, np.uint8).reshape(height, width, ch).copy()

    if mode == MODE_JPEG:
        _check(ch in (1, 3), f'{where}: JPEG in a {ch}-channel field')
        _check(data[:3] == b'\xff\xd8\xff',
               f'{where}: JPEG data does not start with SOI: {data[:4].hex()}')
        _check(data[-2:] == b'\xff\xd9',
               f'{where}: JPEG data does not end with EOI: {data[-4:].hex()}')
    elif mode == MODE_PNG:
        _check(f.type_id == IMAGE,
               f'{where}: PNG (mode 2) in an RGBImageField (type 2)')
        _check(data[:8] == PNG_SIGNATURE, f'{where}: not a PNG file')
        _check(data[12:16] == b'IHDR', f'{where}: PNG has no IHDR first')
        w, h, depth, ctype = struct.unpack_from('>IIBB', data, 16)
        _check(depth == 8, f'{where}: PNG bit depth {depth}, not 8')
        _check(ctype == PNG_COLOR_TYPE[ch],
               f'{where}: PNG colour type {ctype} for a {ch}-channel field '
               f'(expected {PNG_COLOR_TYPE[ch]})')
        _check((w, h) == (width, height),
               f'{where}: PNG IHDR says {w}x{h}, metadata {width}x{height}')
    else:
        raise AssertionError(f'{where}: unknown image mode {mode} '
                             f'(type {f.type_id})')
    _check(cv2 is not None, 'cv2 is needed to decode JPEG/PNG images')

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    _check(img is not None, f'{where}: mode {mode} data does not decode')
    _check(img.dtype == np.uint8, f'{where}: decoded dtype {img.dtype}')
    if img.ndim == 2:
        img = img[:, :, None]
    got = img.shape[2]
    if ch == 1:
        _check(got == 1, f'{where}: decoded {got} channels, field has 1')
    elif ch == 2:
        # OpenCV expands gray+alpha to BGRA (B == G == R)
        if got == 4:
            _check(np.array_equal(img[:, :, 0], img[:, :, 1]) and
                   np.array_equal(img[:, :, 0], img[:, :, 2]),
                   f'{where}: gray+alpha PNG decoded with distinct colours')
            img = img[:, :, [0, 3]]
        else:
            _check(got == 2, f'{where}: decoded {got} channels, field has 2')
    elif ch == 3:
        _check(got == 3, f'{where}: decoded {got} channels, field has 3')
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        _check(got == 4, f'{where}: decoded {got} channels, field has 4')
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    if img.ndim == 2:
        img = img[:, :, None]
    _check(img.shape[:2] == (height, width),
           f'{where}: decoded size {img.shape[1]}x{img.shape[0]}, metadata '
           f'says {width}x{height}')
    return np.ascontiguousarray(img)


# --------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------

def parse(path, decode=True, strict_json=True):
    """Parse and check a whole `.beton` file.

    decode: decode every sample's value (else only metadata + structure).
    strict_json: require JSON bytes to be exactly `json.dumps(value)` of the
    decoded value (default separators, ASCII escapes) plus one zero byte.
    """
    with open(path, 'rb') as fh:
        buf = fh.read()
    b = Beton()
    b.path = str(path)
    b.file_size = n = len(buf)

    # ---- header
    _check(n >= HEADER_SIZE, f'file is {n} bytes, shorter than the header')
    (b.version, b.num_fields, b.page_size, b.num_samples,
     b.alloc_table_ptr) = struct.unpack_from('<HHIQQ', buf, 0)
    _check(b.version == 2, f'version is {b.version}, not 2')
    _check(b.num_fields >= 1, 'num_fields is 0')
    ps = b.page_size
    _check(ps & (ps - 1) == 0 and ps != 0,
           f'page_size {ps} is not a power of two')
    _check(MIN_PAGE_SIZE <= ps <= MAX_PAGE_SIZE,
           f'page_size {ps} is outside [2^21, 2^31]')

    # ---- descriptors
    desc_end = HEADER_SIZE + DESCRIPTOR_SIZE * b.num_fields
    _check(desc_end <= n, f'descriptors end at {desc_end}, past the end of '
                          f'the file ({n})')
    b.fields = _parse_descriptors(buf, b.num_fields)

    # ---- metadata layout
    offsets, b.row_size = row_layout([(f.meta_size, f.meta_align)
                                      for f in b.fields])
    for f, off in zip(b.fields, offsets):
        f.offset = off
    b.metadata_ptr = desc_end
    b.metadata_end = desc_end + b.row_size * b.num_samples
    b.data_start_min = -(-b.metadata_end // ps) * ps
    _check(b.metadata_end <= b.alloc_table_ptr,
           f'metadata table ends at {b.metadata_end}, past alloc_table_ptr '
           f'{b.alloc_table_ptr}')
    _check(b.alloc_table_ptr <= n,
           f'alloc_table_ptr {b.alloc_table_ptr} is past the end of the file '
           f'({n})')
    _check((n - b.alloc_table_ptr) % ALLOC_ENTRY_SIZE == 0,
           f'{n - b.alloc_table_ptr} bytes from alloc_table_ptr '
           f'{b.alloc_table_ptr} to the end of the file: not a multiple of 24 '
           f'(something follows the allocation table?)')

    # ---- allocation table
    count = (n - b.alloc_table_ptr) // ALLOC_ENTRY_SIZE
    table = np.frombuffer(buf, dtype='<u8', count=3 * count,
                          offset=b.alloc_table_ptr).reshape(count, 3)
    b.allocations = [Allocation(int(s), int(p), int(z)) for s, p, z in table]
    _check_allocations(b)

    by_sample_ptr = {}
    for a in b.allocations:
        by_sample_ptr.setdefault((a.sample_id, a.ptr), []).append(a)

    # ---- metadata rows and values
    for sid in range(b.num_samples):
        row = b.metadata_ptr + sid * b.row_size
        meta = {}
        values = {}
        for f in b.fields:
            off = row + f.offset
            m, v = _read_member(b, buf, f, sid, off, by_sample_ptr,
                                decode, strict_json)
            meta[f.name] = m
            values[f.name] = v
        b.meta.append(meta)
        if decode:
            b.samples.append(values)
    return b


def _check_allocations(b):
    ps = b.page_size
    pages = set()
    for a in b.allocations:
        _check(a.sample_id < b.num_samples,
               f'allocation {a}: sample_id >= num_samples ({b.num_samples})')
        _check(a.size <= ps, f'allocation {a}: larger than page_size {ps}')
        if a.size > 0:
            first = a.ptr // ps
            last = (a.ptr + a.size - 1) // ps
            _check(first == last,
                   f'allocation {a}: crosses the page boundary at '
                   f'{(first + 1) * ps}')
            pages.add(first)
        _check(a.ptr >= b.data_start_min,
               f'allocation {a}: starts before the data region (first '
               f'possible page at {b.data_start_min})')
        _check(a.ptr + a.size <= b.alloc_table_ptr,
               f'allocation {a}: ends past alloc_table_ptr {b.alloc_table_ptr}')
    b.pages = sorted(pages)
    if b.pages:
        end_of_last_page = (b.pages[-1] + 1) * ps
        _check(b.alloc_table_ptr >= end_of_last_page,
               f'alloc_table_ptr {b.alloc_table_ptr} is before the end of the '
               f'last page ({end_of_last_page}): pages must be written whole')
    if not b.allocations:
        _check(b.alloc_table_ptr == b.metadata_end,
               f'no allocations, but alloc_table_ptr {b.alloc_table_ptr} is '
               f'not the end of the metadata table ({b.metadata_end})')
    # overlaps (zero-size allocations overlap nothing)
    srt = sorted((a for a in b.allocations if a.size > 0), key=lambda a: a.ptr)
    for x, y in zip(srt, srt[1:]):
        _check(x.ptr + x.size <= y.ptr,
               f'allocations overlap: {x} and {y}')


def _lookup_alloc(by_sample_ptr, sid, ptr, where, size=None):
    cands = by_sample_ptr.get((sid, ptr), [])
    _check(cands, f'{where}: pointer {ptr} is not the ptr of an allocation of '
                  f'sample {sid}')
    if size is not None:
        cands = [a for a in cands if a.size == size]
        _check(cands, f'{where}: no allocation of sample {sid} at {ptr} has '
                      f'size {size}')
    elif any(a.size for a in cands):
        # a zero-size allocation may share its ptr with the next allocation
        # (it overlaps nothing); a value that needs data is not the empty one
        cands = [a for a in cands if a.size]
    sizes = {a.size for a in cands}
    _check(len(sizes) == 1,
           f'{where}: several allocations of sample {sid} at {ptr} with '
           f'different sizes {sorted(sizes)}: ambiguous')
    return cands[0]


def _read_member(b, buf, f, sid, off, by_sample_ptr, decode, strict_json):
    where = f'sample {sid}, field {f.name!r}'
    t = f.type_id
    if t == FLOAT:
        (v,) = struct.unpack_from('<d', buf, off)
        return v, v
    if t == INT:
        (v,) = struct.unpack_from('<q', buf, off)
        return v, v
    if t in (BYTES, JSON):
        ptr, size = struct.unpack_from('<QQ', buf, off)
        meta = {'ptr': ptr, 'size': size}
        _lookup_alloc(by_sample_ptr, sid, ptr, where, size)
        data = buf[ptr:ptr + size]
        if t == BYTES:
            return meta, bytes(data)
        _check(size >= 1 and data[-1] == 0,
               f'{where}: JSON bytes do not end with a zero byte')
        text_b = bytes(data[:data.index(0)])
        _check(len(text_b) == size - 1,
               f'{where}: JSON bytes have a zero byte before the last one')
        try:
            text = text_b.decode('utf-8')
            value = json.loads(text)
        except ValueError as e:
            raise AssertionError(f'{where}: JSON does not decode: {e}')
        if strict_json:
            canon = json.dumps(value)
            _check(canon == text,
                   f'{where}: stored JSON {text[:80]!r} is not json.dumps of '
                   f'its value ({canon[:80]!r})')
        return meta, value
    if t in (NDARRAY, TORCH_TENSOR):
        (ptr,) = struct.unpack_from('<Q', buf, off)
        meta = {'ptr': ptr}
        nbytes = int(np.prod(f.shape, dtype=np.int64)) * f.dtype.itemsize
        a = _lookup_alloc(by_sample_ptr, sid, ptr, where)
        _check(a.size == nbytes,
               f'{where}: array allocation is {a.size} bytes, expected '
               f'prod{f.shape} * {f.dtype.itemsize} = {nbytes}')
        arr = np.frombuffer(buf, dtype=f.dtype, count=nbytes // f.dtype.itemsize,
                            offset=ptr).reshape(f.shape).copy()
        return meta, arr
    if t in (RGB_IMAGE, IMAGE):
        mode, width, height, ptr = struct.unpack_from('<BHHQ', buf, off)
        meta = {'mode': mode, 'width': width, 'height': height, 'ptr': ptr}
        allowed = (MODE_JPEG, MODE_RAW) if t == RGB_IMAGE else \
            (MODE_JPEG, MODE_RAW, MODE_PNG)
        _check(mode in allowed,
               f'{where}: image mode {mode} not allowed for type {t}')
        a = _lookup_alloc(by_sample_ptr, sid, ptr, where)
        meta['alloc_size'] = a.size
        if not decode:
            return meta, None
        data = bytes(buf[ptr:ptr + a.size])
        return meta, _decode_image(f, sid, mode, width, height, data)
    raise AssertionError(f'{where}: unknown type {t}')  # pragma: no cover


def describe(b):
    """A short human-readable summary (for debugging)."""
    lines = [f'{b.path}: version {b.version}, {b.num_fields} fields, '
             f'page_size {b.page_size}, {b.num_samples} samples, '
             f'row size {b.row_size}, metadata [{b.metadata_ptr}, '
             f'{b.metadata_end}), alloc_table_ptr {b.alloc_table_ptr}, '
             f'{len(b.allocations)} allocations on pages {b.pages}, '
             f'file size {b.file_size}']
    lines += [f'  {f!r}' for f in b.fields]
    return '\n'.join(lines)


if __name__ == '__main__':  # pragma: no cover
    import sys
    for p in sys.argv[1:]:
        print(describe(parse(p)))
