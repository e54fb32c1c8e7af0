"""Check `.beton` files against docs/format.md with an independent parser.

* tests/spec_parser.py parses a file from the spec alone (no ffcv_format).
* data/ffcv-1.0.2/: files written by the released FFCV 1.0.2, with the values
  they were written from.
* data/vectors/: files written by OUR writer (make_vectors.py, run on purpose
  only: the checked-in files pin the byte format), with expected contents.
"""

import importlib.util
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip('cv2')

HERE = Path(__file__).resolve().parent
DATA = HERE / 'data'
FFCV102 = DATA / 'ffcv-1.0.2'
VECTORS = DATA / 'vectors'


def _load_spec_parser():
    name = '_ffcv_format_tests_spec_parser'
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / 'spec_parser.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


sp = _load_spec_parser()


def jpeg_close(got, want, where, mad_max=3.0, psnr_min=30.0):
    assert got.shape == want.shape, f'{where}: shape {got.shape} != {want.shape}'
    d = got.astype(np.float64) - want.astype(np.float64)
    mad = np.abs(d).mean()
    mse = (d ** 2).mean()
    psnr = np.inf if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
    assert mad < mad_max, f'{where}: mean abs diff {mad:.2f} >= {mad_max}'
    assert psnr > psnr_min, f'{where}: PSNR {psnr:.1f} dB <= {psnr_min}'


def exact(got, want, where):
    assert got.dtype == want.dtype, f'{where}: dtype {got.dtype} != {want.dtype}'
    assert got.shape == want.shape, f'{where}: shape {got.shape} != {want.shape}'
    assert got.tobytes() == want.tobytes(), f'{where}: values differ'


# ===========================================================================
# The layout rule itself (the spec's examples)
# ===========================================================================

@pytest.mark.parametrize('members, offsets, size', [
    ([(13, 1), (8, 8)], [0, 16], 24),     # image + label
    ([(8, 8), (13, 1)], [0, 8], 24),      # label + image
    ([(16, 1), (16, 1)], [0, 16], 32),    # bytes + JSON
    ([(13, 1), (13, 1)], [0, 13], 26),    # two images
    ([(8, 8), (8, 8)], [0, 8], 16),
    ([(13, 1)], [0], 13),
    ([(16, 1), (13, 1), (8, 8), (13, 1)], [0, 16, 32, 40], 56),
])
def test_row_layout_examples(members, offsets, size):
    assert sp.row_layout(members) == (offsets, size)


def test_row_layout_matches_numpy_align_rule():
    # cross-check the reimplementation on random member lists
    rng = np.random.RandomState(0)
    kinds = {0: ('<f8', (8, 8)), 1: ('<i8', (8, 8)), 2: ('V13', (13, 1)),
             3: ('V16', (16, 1))}
    for _ in range(200):
        ks = rng.randint(0, 4, size=rng.randint(1, 8))
        dt = np.dtype([(f'f{i}', kinds[k][0]) for i, k in enumerate(ks)],
                      align=True)
        offs, size = sp.row_layout([kinds[k][1] for k in ks])
        assert offs == [dt.fields[f'f{i}'][1] for i in range(len(ks))]
        assert size == dt.itemsize


# ===========================================================================
# Files written by FFCV 1.0.2
# ===========================================================================

def _fields(b):
    return [(f.name, f.type_id) for f in b.fields]


def test_ffcv102_readme_copied():
    assert (FFCV102 / 'README.md').is_file()


def test_ffcv102_scalars():
    b = sp.parse(FFCV102 / 'scalars.beton')
    e = np.load(FFCV102 / 'scalars.expected.npz')
    assert _fields(b) == [('label', 1), ('weight', 0)]
    assert b.num_samples == 1000 and b.page_size == 2 ** 21
    assert b.row_size == 16
    assert b.allocations == [] and b.alloc_table_ptr == b.file_size
    exact(np.array(b.column('label'), '<i8'), e['label'].astype('<i8'), 'label')
    exact(np.array(b.column('weight'), '<f8'), e['weight'].astype('<f8'),
          'weight')


def test_ffcv102_bytes_json():
    b = sp.parse(FFCV102 / 'bytes_json.beton')
    e = np.load(FFCV102 / 'bytes_json.expected.npz')
    assert _fields(b) == [('blob', 3), ('meta', 5)]
    assert b.num_samples == 200 and b.row_size == 32
    metas = json.loads(str(e['meta']))
    assert len(metas) == 200
    for i, s in enumerate(b.samples):
        assert isinstance(s['blob'], bytes)
        assert s['blob'] == e[f'blob_{i}'].tobytes(), f'blob {i}'
        assert s['meta'] == metas[i], f'meta {i}'


def test_ffcv102_ndarray():
    b = sp.parse(FFCV102 / 'ndarray.beton')
    e = np.load(FFCV102 / 'ndarray.expected.npz')
    assert _fields(b) == [('x', 4), ('y', 4)]
    assert (b.field('x').dtype, b.field('x').shape) == (np.dtype('<f4'), (3, 5))
    assert (b.field('y').dtype, b.field('y').shape) == (np.dtype('<i2'), (7,))
    assert b.field('x').descr_json == '[["", "<f4"]]'
    exact(np.stack(b.column('x')), e['x'], 'x')
    exact(np.stack(b.column('y')), e['y'], 'y')


def _ffcv102_images(name):
    b = sp.parse(FFCV102 / f'{name}.beton')
    assert _fields(b) == [('image', 2), ('label', 1)]
    assert b.row_size == 24 and b.field('label').offset == 16
    return b


def test_ffcv102_images_raw():
    b = _ffcv102_images('images_raw')
    e = np.load(FFCV102 / 'images.expected.npz')
    assert b.num_samples == 40
    exact(np.array(b.column('label'), '<i8'), e['labels'].astype('<i8'),
          'labels')
    for i, s in enumerate(b.samples):
        assert b.meta[i]['image']['mode'] == sp.MODE_RAW
        exact(s['image'], e[f'img_{i}'], f'img {i}')


def test_ffcv102_images_jpg():
    b = _ffcv102_images('images_jpg')
    e = np.load(FFCV102 / 'images.expected.npz')
    exact(np.array(b.column('label'), '<i8'), e['labels'].astype('<i8'),
          'labels')
    for i, s in enumerate(b.samples):
        assert b.meta[i]['image']['mode'] == sp.MODE_JPEG
        # quality 95: measured ~1.9 mean abs diff, >= 40 dB at worst
        jpeg_close(s['image'], e[f'img_{i}'], f'img {i}', mad_max=3.0,
                   psnr_min=35.0)


def test_ffcv102_images_proportion():
    b = _ffcv102_images('images_proportion')
    e = np.load(FFCV102 / 'images.expected.npz')
    exact(np.array(b.column('label'), '<i8'), e['labels'].astype('<i8'),
          'labels')
    modes = [m['image']['mode'] for m in b.meta]
    assert set(modes) == {sp.MODE_JPEG, sp.MODE_RAW}, modes
    for i, s in enumerate(b.samples):
        if modes[i] == sp.MODE_RAW:
            exact(s['image'], e[f'img_{i}'], f'img {i}')
        else:
            jpeg_close(s['image'], e[f'img_{i}'], f'img {i}', psnr_min=30.0)


def test_ffcv102_images_maxres():
    b = _ffcv102_images('images_maxres')
    e = np.load(FFCV102 / 'images_maxres.expected.npz')
    assert b.num_samples == 10
    assert b.column('label') == list(range(10))
    for i, s in enumerate(b.samples):
        orig = e[f'img_{i}']
        h, w = orig.shape[:2]
        r = 64 / max(h, w)
        want = cv2.resize(orig, (int(w * r), int(h * r)),
                          interpolation=cv2.INTER_AREA)
        assert b.meta[i]['image']['mode'] == sp.MODE_RAW
        exact(s['image'], want, f'img {i}')


# ===========================================================================
# The parser's checks fire (mutated copies of an FFCV 1.0.2 file)
# ===========================================================================

@pytest.fixture
def mutable(tmp_path):
    def make(name):
        dst = tmp_path / name
        shutil.copyfile(FFCV102 / name, dst)
        dst.chmod(0o644)
        return dst
    return make


def _patch(path, offset, data):
    with open(path, 'r+b') as fh:
        fh.seek(offset)
        fh.write(data)


def _append(path, data):
    with open(path, 'ab') as fh:
        fh.write(data)


def _header(path):
    with open(path, 'rb') as fh:
        return struct.unpack('<HHIQQ', fh.read(24))


def _first_alloc(path):
    v, nf, ps, ns, atp = _header(path)
    with open(path, 'rb') as fh:
        fh.seek(atp)
        return atp, struct.unpack('<QQQ', fh.read(24))


def test_reject_short_file(tmp_path):
    p = tmp_path / 'short.beton'
    p.write_bytes(b'\x02\x00\x01')
    with pytest.raises(AssertionError, match='shorter than the header'):
        sp.parse(p)


def test_reject_version(mutable):
    p = mutable('scalars.beton')
    _patch(p, 0, struct.pack('<H', 1))
    with pytest.raises(AssertionError, match='version'):
        sp.parse(p)


def test_reject_page_size(mutable):
    p = mutable('scalars.beton')
    _patch(p, 4, struct.pack('<I', 3 * 2 ** 20))
    with pytest.raises(AssertionError, match='power of two'):
        sp.parse(p)


def test_reject_unknown_type(mutable):
    p = mutable('scalars.beton')
    _patch(p, 24, b'\x09')
    with pytest.raises(AssertionError, match='unknown type id 9'):
        sp.parse(p)


def test_reject_repeated_name(mutable):
    p = mutable('scalars.beton')
    _patch(p, 24 + 1041 + 1, b'label\0')
    with pytest.raises(AssertionError, match='repeated field names'):
        sp.parse(p)


def test_reject_trailing_bytes(mutable):
    p = mutable('scalars.beton')
    _append(p, b'\0' * 5)
    with pytest.raises(AssertionError, match='multiple of 24'):
        sp.parse(p)


def test_reject_data_after_table_of_scalars(mutable):
    # 24 more bytes parse as an allocation entry, which then must be valid
    p = mutable('scalars.beton')
    _append(p, struct.pack('<QQQ', 0, 0, 0))
    with pytest.raises(AssertionError, match='before the data region'):
        sp.parse(p)


def test_reject_alloc_crossing_page(mutable):
    p = mutable('bytes_json.beton')
    v, nf, ps, ns, atp = _header(p)
    pos, (sid, ptr, size) = _first_alloc(p)
    _patch(p, pos + 8, struct.pack('<Q', 2 * ps - 1))
    with pytest.raises(AssertionError, match='crosses the page boundary'):
        sp.parse(p)


def test_reject_overlap(mutable):
    p = mutable('bytes_json.beton')
    v, nf, ps, ns, atp = _header(p)
    entries = []
    with open(p, 'rb') as fh:
        fh.seek(atp)
        raw = fh.read()
    for k in range(len(raw) // 24):
        entries.append(struct.unpack_from('<QQQ', raw, 24 * k))
    # find an entry whose size > 1 and move the next-higher one into it
    entries_sorted = sorted(range(len(entries)), key=lambda k: entries[k][1])
    a, b_ = entries_sorted[0], entries_sorted[1]
    sid, ptr, size = entries[b_]
    _patch(p, atp + 24 * b_ + 8, struct.pack("<Q", entries[a][1]))
    with pytest.raises(AssertionError, match='overlap'):
        sp.parse(p, decode=False)


def test_reject_pointer_of_other_sample(mutable):
    p = mutable('ndarray.beton')
    b = sp.parse(p, decode=False)
    # make sample 0's x pointer point to sample 1's x allocation
    ptr1 = b.meta[1]['x']['ptr']
    _patch(p, b.metadata_ptr + b.field('x').offset, struct.pack('<Q', ptr1))
    with pytest.raises(AssertionError, match='not the ptr of an allocation '
                                             'of sample 0'):
        sp.parse(p, decode=False)


def test_reject_table_before_last_page_end(mutable):
    p = mutable('bytes_json.beton')
    v, nf, ps, ns, atp = _header(p)
    with open(p, 'rb') as fh:
        buf = fh.read()
    # drop the last 24 bytes of the page just before the table
    new = buf[:atp - 24] + buf[atp:]
    new = new[:16] + struct.pack('<Q', atp - 24) + new[24:]
    p.write_bytes(new)
    with pytest.raises(AssertionError, match='pages must be written whole|'
                                             'ends past alloc_table_ptr'):
        sp.parse(p, decode=False)


def test_reject_bad_image_mode(mutable):
    p = mutable('images_raw.beton')
    b = sp.parse(p, decode=False)
    _patch(p, b.metadata_ptr + b.field('image').offset, b'\x02')
    with pytest.raises(AssertionError, match='image mode 2 not allowed'):
        sp.parse(p)


def test_reject_raw_image_size(mutable):
    p = mutable('images_raw.beton')
    b = sp.parse(p, decode=False)
    w = b.meta[0]['image']['width']
    _patch(p, b.metadata_ptr + b.field('image').offset + 1,
           struct.pack('<H', w + 1))
    with pytest.raises(AssertionError, match='raw image allocation'):
        sp.parse(p)


def test_reject_json_without_zero(mutable):
    p = mutable('bytes_json.beton')
    b = sp.parse(p, decode=False)
    m = b.meta[0]['meta']
    _patch(p, m['ptr'] + m['size'] - 1, b' ')
    with pytest.raises(AssertionError, match='zero byte'):
        sp.parse(p)


# ===========================================================================
# Vectors written by OUR writer (checked in; never regenerated by tests)
# ===========================================================================

REQUIRED_VECTORS = ['scalars', 'empty', 'bytes_json_ndarray', 'images_rgb',
                    'images_ext']
OPTIONAL_VECTORS = ['torch']


def _vector_names():
    return sorted(p.name[:-len('.beton')] for p in VECTORS.glob('*.beton'))


def test_vectors_present():
    names = _vector_names()
    missing = [n for n in REQUIRED_VECTORS if n not in names]
    assert not missing, f'missing vectors {missing}: run make_vectors.py'
    for n in names:
        assert n in REQUIRED_VECTORS + OPTIONAL_VECTORS, f'unexpected {n}'
        assert (VECTORS / f'{n}.expected.json').is_file(), n
        assert (VECTORS / f'{n}.expected.npz').is_file(), n


def _load_vector(name):
    path = VECTORS / f'{name}.beton'
    if not path.exists():
        if name in OPTIONAL_VECTORS:
            pytest.skip(f'{name} vector not written (no torch when generated)')
        pytest.fail(f'{path} missing: run make_vectors.py')
    with open(VECTORS / f'{name}.expected.json') as fh:
        exp = json.load(fh)
    npz = np.load(VECTORS / f'{name}.expected.npz')
    return sp.parse(path), exp, npz


@pytest.mark.parametrize('name', REQUIRED_VECTORS + OPTIONAL_VECTORS)
def test_vector_contents(name):
    b, exp, npz = _load_vector(name)
    assert b.num_samples == exp['num_samples']
    assert b.page_size == exp['page_size']
    assert [f.name for f in b.fields] == [f['name'] for f in exp['fields']]
    n = b.num_samples
    for fe in exp['fields']:
        fname = fe['name']
        f = b.field(fname)
        where = f'{name}:{fname}'
        assert f.type_id == fe['type_id'], \
            f'{where}: type id {f.type_id}, expected {fe["type_id"]}'
        t = f.type_id
        if 'dtype' in fe:
            assert f.dtype == np.dtype(fe['dtype']), f'{where}: {f.dtype}'
            assert f.dtype.str == fe['dtype'], f'{where}: {f.dtype.str}'
            assert list(f.shape) == fe['shape'], f'{where}: {f.shape}'
            assert f.descr_json == json.dumps([['', fe['dtype']]]), \
                f'{where}: {f.descr_json!r}'
        if 'channels' in fe:
            assert f.channels == fe['channels'], f'{where}: {f.channels}'
        col = b.column(fname) if n else []
        if t == sp.INT:
            exact(np.array(col, '<i8').reshape(n), npz[fname], where)
        elif t == sp.FLOAT:
            exact(np.array(col, '<f8').reshape(n), npz[fname], where)
        elif t == sp.BYTES:
            for i, v in enumerate(col):
                assert isinstance(v, bytes)
                assert v == npz[f'{fname}.{i}'].tobytes(), f'{where}[{i}]'
        elif t == sp.JSON:
            want = exp['json_values'][fname]
            assert len(want) == n
            for i, v in enumerate(col):
                assert v == want[i], f'{where}[{i}]: {v!r} != {want[i]!r}'
                assert type(v) is type(want[i]), f'{where}[{i}]'
        elif t in (sp.NDARRAY, sp.TORCH_TENSOR):
            got = np.stack(col) if n else np.zeros((0,) + f.shape, f.dtype)
            exact(got, npz[fname], where)
        elif t in (sp.RGB_IMAGE, sp.IMAGE):
            for i, img in enumerate(col):
                m = b.meta[i][fname]
                w = f'{where}[{i}] (mode {m["mode"]})'
                assert m['mode'] in fe['modes'], w
                want = npz[f'{fname}.{i}']
                assert img.shape == want.shape, f'{w}: {img.shape}'
                assert (m['height'], m['width']) == want.shape[:2], w
                if m['mode'] == sp.MODE_JPEG:
                    jpeg_close(img, want, w)
                else:
                    exact(img, want, w)
        else:  # pragma: no cover
            pytest.fail(f'{where}: unhandled type {t}')


@pytest.mark.parametrize('name', REQUIRED_VECTORS + OPTIONAL_VECTORS)
def test_vector_writer_conventions(name):
    """What docs/format.md says `ffcv_format` itself does (beyond validity)."""
    b, exp, npz = _load_vector(name)
    # the allocation table is sorted by ptr
    ptrs = [a.ptr for a in b.allocations]
    assert ptrs == sorted(ptrs), f'{name}: allocation table not sorted by ptr'
    with open(VECTORS / f'{name}.beton', 'rb') as fh:
        buf = fh.read()
    if b.allocations:
        # bytes of a page that no allocation covers are zeros
        covered = np.zeros(b.alloc_table_ptr, bool)
        for a in b.allocations:
            covered[a.ptr:a.ptr + a.size] = True
        data = np.frombuffer(buf, np.uint8, count=b.alloc_table_ptr)
        for page in b.pages:
            lo, hi = page * b.page_size, (page + 1) * b.page_size
            stray = np.flatnonzero(data[lo:hi][~covered[lo:hi]])
            assert stray.size == 0, \
                f'{name}: nonzero uncovered bytes in page {page}'
    else:
        assert b.alloc_table_ptr == b.file_size == b.metadata_end


def test_vector_scalars_special_floats():
    b, exp, npz = _load_vector('scalars')
    w = np.array(b.column('weight'), '<f8')
    assert np.signbit(w[1]) and w[1] == 0, '-0.0 kept'
    assert np.isnan(w[5])


def test_lookup_zero_size_sharing_ptr():
    # a zero-size allocation overlaps nothing, so it may share its ptr with
    # another allocation of the same sample; a lookup by ptr alone (images,
    # arrays) then means the nonzero one, a lookup with a size the exact one
    A = sp.Allocation
    table = {(0, 100): [A(0, 100, 0), A(0, 100, 50)]}
    assert sp._lookup_alloc(table, 0, 100, 'x').size == 50
    assert sp._lookup_alloc(table, 0, 100, 'x', size=0).size == 0
    table = {(0, 100): [A(0, 100, 7), A(0, 100, 50)]}
    with pytest.raises(AssertionError, match='ambiguous'):
        sp._lookup_alloc(table, 0, 100, 'x')


# ===========================================================================
# Live: our writer across several pages, checked by the spec parser
# ===========================================================================


@pytest.mark.parametrize('num_workers', [1, 2])
def test_live_writer_multipage(tmp_path, num_workers):
    from ffcv_format import DatasetWriter, BytesField, IntField, NDArrayField
    rng = np.random.RandomState(5)
    sizes = [0, 1, 2 ** 21, 900_000, 700_000, 1_500_000, 0, 3, 1_200_000,
             2 ** 21 - 1, 400_000, 800_000]
    blobs = [rng.randint(0, 256, size=s).astype(np.uint8) for s in sizes]
    arrs = rng.normal(size=(len(sizes), 1000)).astype('<f8')
    path = tmp_path / 'multi.beton'
    w = DatasetWriter(str(path), {'blob': BytesField(), 'n': IntField(),
                                  'arr': NDArrayField(np.dtype('<f8'), (1000,))},
                      page_size=2 ** 21, num_workers=num_workers,
                      progress=False, overwrite=True)
    w.from_indexed_dataset([(blobs[i], i, arrs[i]) for i in range(len(sizes))])
    b = sp.parse(path)
    assert len(b.pages) >= 5, b.pages
    assert b.column('n') == list(range(len(sizes)))
    for i, s in enumerate(b.samples):
        assert s['blob'] == blobs[i].tobytes(), i
        exact(s['arr'], arrs[i], f'arr {i}')
    ptrs = [a.ptr for a in b.allocations]
    assert ptrs == sorted(ptrs)
