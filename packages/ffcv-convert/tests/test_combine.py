"""concat, subset, append: samples copied without decoding, fields checked."""
import numpy as np
import pytest
from ffcv_convert import FieldMismatchError, append, concat, parse_indices, subset
from ffcv_format import (
    BytesField,
    FloatField,
    IntField,
    JSONField,
    NDArrayField,
    Reader,
    RGBImageField,
    verify,
)
from ffcv_format.testing import photo_like_image, write_dataset


def _fields(shape=(3,)):
    return {'image': RGBImageField(write_mode='jpg'), 'blob': BytesField(), 'meta': JSONField(),
            'vec': NDArrayField(np.dtype('float32'), shape), 'label': IntField(), 'score': FloatField()}


def _samples(count, seed):
    rng = np.random.default_rng(seed)
    return [(photo_like_image(rng, int(rng.integers(20, 60)), int(rng.integers(20, 60))),
             rng.integers(0, 255, int(rng.integers(0, 50)), dtype=np.uint8).tobytes(),
             {'seed': seed, 'k': k}, rng.normal(size=3).astype(np.float32), seed * 1000 + k, k / 7)
            for k in range(count)]


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('combine')
    a = write_dataset(root / 'a.beton', _fields(), _samples(25, 1), chunksize=3, num_workers=2)
    b = write_dataset(root / 'b.beton', _fields(), _samples(7, 2), page_size=1 << 22)
    c = write_dataset(root / 'c.beton', _fields(), _samples(0, 3))
    return root, [a, b, c]


def _same(x, y):
    for u, v in zip(x, y):
        if isinstance(u, np.ndarray):
            np.testing.assert_array_equal(u, v)
        else:
            assert u == v


def test_concat_keeps_every_sample_in_order(files, tmp_path):
    root, readers = files
    count = concat([r.file_name for r in readers], tmp_path / 'all.beton')
    assert count == 32
    out = Reader(tmp_path / 'all.beton')
    expected = [r[i] for r in readers for i in range(r.num_samples)]
    for i, sample in enumerate(expected):
        _same(out[i], sample)
    verify(tmp_path / 'all.beton')
    assert out.page_size == 1 << 22  # the largest of the inputs'
    # packed afresh: one page holds all the data
    first_page = int(out.alloc_table['ptr'].min()) // out.page_size * out.page_size
    assert out.alloc_table_ptr - first_page == out.page_size


def test_subset_with_shuffled_and_repeated_indices(files, tmp_path):
    _, (a, _, _) = files
    indices = [24, 0, 3, 3, 17, 5]
    assert subset(a.file_name, indices, tmp_path / 's.beton') == 6
    out = Reader(tmp_path / 's.beton')
    for j, i in enumerate(indices):
        _same(out[j], a[i])
    verify(tmp_path / 's.beton')
    with pytest.raises(IndexError, match=r'index 25 is out of range for .*a.beton.*25 samples'):
        subset(a.file_name, [1, 25], tmp_path / 'bad.beton')
    assert not (tmp_path / 'bad.beton').exists()


def test_append_makes_a_new_file_and_can_replace_the_base(files, tmp_path):
    _, (a, b, _) = files
    assert append(a.file_name, b.file_name, tmp_path / 'ab.beton') == 32
    out = Reader(tmp_path / 'ab.beton')
    _same(out[25], b[0])
    _same(out[24], a[24])
    import shutil
    base = tmp_path / 'base.beton'
    shutil.copy(b.file_name, base)
    with pytest.raises(FileExistsError, match='overwrite'):
        append(base, [a.file_name], base)
    old = Reader(base)
    append(base, [a.file_name], base, overwrite=True)
    assert Reader(base).num_samples == 32 and old.num_samples == 7  # the old file is still readable
    _same(old[6], b[6])


def test_mismatched_fields_are_refused_with_the_difference(files, tmp_path):
    root, (a, _, _) = files
    renamed = write_dataset(tmp_path / 'renamed.beton', {'img': RGBImageField(), 'label': IntField()},
                            [(np.zeros((4, 4, 3), np.uint8), 1)])
    only_two = write_dataset(tmp_path / 'two.beton', {'image': RGBImageField(), 'label': IntField()},
                             [(np.zeros((4, 4, 3), np.uint8), 1)])
    floats = write_dataset(tmp_path / 'floats.beton', {'image': RGBImageField(), 'label': FloatField()},
                           [(np.zeros((4, 4, 3), np.uint8), 1.0)])
    with pytest.raises(FieldMismatchError, match=r"fields differ: image \(RGBImageField\), "
                                                 r"label \(IntField\) vs img \(RGBImageField\), label"):
        concat([only_two.file_name, renamed.file_name], tmp_path / 'x.beton')
    with pytest.raises(FieldMismatchError, match=r"label \(IntField\) vs .*label \(FloatField\)"):
        append(only_two.file_name, floats.file_name, tmp_path / 'x.beton')
    wider = write_dataset(tmp_path / 'wider.beton', _fields(shape=(4,)),
                          [(s[0], s[1], s[2], np.zeros(4, np.float32), s[4], s[5]) for s in _samples(2, 9)])
    with pytest.raises(FieldMismatchError,
                       match=r"field 'vec' has different settings.*shape=\(3,\).*shape=\(4,\)"):
        concat([a.file_name, wider.file_name], tmp_path / 'x.beton')
    assert not (tmp_path / 'x.beton').exists()


def test_parse_indices():
    np.testing.assert_array_equal(parse_indices('0:3,10,20:26:2'), [0, 1, 2, 10, 20, 22, 24])
    np.testing.assert_array_equal(parse_indices('::4,-1', length=10), [0, 4, 8, 9])
    with pytest.raises(ValueError, match=r"cannot read indices 'x'"):
        parse_indices('1,x')
    with pytest.raises(ValueError, match='needs the file'):
        parse_indices('5:')
