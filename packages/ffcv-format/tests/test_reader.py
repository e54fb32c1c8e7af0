"""Reader: FFCV 1.0.2's files read exactly; damaged files give clear errors, never garbage."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ffcv_format import (BytesField, DatasetWriter, Field, FormatError, IntField, JSONField, NDArrayField, Reader,
                         RGBImageField, verify)
from ffcv_format.fields.base import empty_arguments
from ffcv_format.testing import mean_abs_diff, photo_like_image, write_dataset

COMPAT = Path(__file__).parent / 'data' / 'ffcv-1.0.2'


def test_ffcv102_scalars():
    reader = Reader(COMPAT / 'scalars.beton')
    expected = np.load(COMPAT / 'scalars.expected.npz')
    assert reader.field_names == ['label', 'weight'] and reader.page_size == 1 << 21
    np.testing.assert_array_equal(reader.metadata['label'], expected['label'])
    for k in range(reader.num_samples):
        assert reader[k] == (int(expected['label'][k]), float(expected['weight'][k]))


def test_ffcv102_bytes_and_json():
    reader = Reader(COMPAT / 'bytes_json.beton')
    expected = np.load(COMPAT / 'bytes_json.expected.npz')
    docs = json.loads(str(expected['meta']))
    assert reader.num_samples == len(docs) == 200
    for k in range(reader.num_samples):
        blob, doc = reader[k]
        np.testing.assert_array_equal(blob, expected[f'blob_{k}'])
        assert doc == docs[k]


def test_ffcv102_ndarray():
    reader = Reader(COMPAT / 'ndarray.beton')
    expected = np.load(COMPAT / 'ndarray.expected.npz')
    for k in range(reader.num_samples):
        x, y = reader[k]
        assert x.dtype == np.float32 and y.dtype == np.int16
        np.testing.assert_array_equal(x, expected['x'][k])
        np.testing.assert_array_equal(y, expected['y'][k])


@pytest.mark.parametrize('name', ['images_raw', 'images_jpg', 'images_proportion'])
def test_ffcv102_images(name):
    reader = Reader(COMPAT / f'{name}.beton')
    expected = np.load(COMPAT / 'images.expected.npz')
    modes = reader.metadata['image']['mode']
    for k in range(reader.num_samples):
        image, label = reader[k]
        original = expected[f'img_{k}']
        assert label == expected['labels'][k]
        assert image.shape == original.shape and image.dtype == np.uint8
        if modes[k] == 1:
            np.testing.assert_array_equal(image, original)
        else:
            assert mean_abs_diff(image, original) < 3
    if name == 'images_proportion':
        assert 0 < (modes == 0).sum() < len(modes)


def test_ffcv102_max_resolution_is_opencv_area_resize():
    reader = Reader(COMPAT / 'images_maxres.beton')
    expected = np.load(COMPAT / 'images_maxres.expected.npz')
    for k in range(reader.num_samples):
        image, label = reader[k]
        original = expected[f'img_{label}']
        h, w = original.shape[:2]
        ratio = 64 / max(h, w)
        np.testing.assert_array_equal(
            image, cv2.resize(original, (int(w * ratio), int(h * ratio)), interpolation=cv2.INTER_AREA))


def test_every_ffcv102_file_verifies():
    for path in sorted(COMPAT.glob('*.beton')):
        assert verify(path)['num_samples'] > 0


def test_opening_maps_instead_of_reading(tmp_path):
    reader = write_dataset(tmp_path / 'a.beton', {'b': BytesField()}, [(bytes(10),)] * 1000)
    for table in (reader.metadata, reader.alloc_table):
        assert not table.flags.owndata and not table.flags.writeable
    assert len(reader.alloc_table) == 1000


@pytest.fixture
def good_file(tmp_path):
    rng = np.random.default_rng(0)
    samples = [(photo_like_image(rng, 20, 30), k, np.arange(4, dtype=np.int32) + k, {'k': k})
               for k in range(20)]
    fields = {'image': RGBImageField(write_mode='jpg'), 'label': IntField(),
              'x': NDArrayField(np.dtype('int32'), (4,)), 'doc': JSONField()}
    write_dataset(tmp_path / 'good.beton', fields, samples)
    return tmp_path / 'good.beton'


def damaged(path, tmp_path, edit):
    data = bytearray(path.read_bytes())
    result = edit(data)
    if result is not None:
        data = result
    out = tmp_path / 'damaged.beton'
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize('cut,fragment', [
    (0, 'fewer than the 24-byte header'),
    (10, 'fewer than the 24-byte header'),
    (100, 'field descriptors need'),
    (24 + 4 * 1041 + 50, 'metadata of 20 samples'),
    (-5, 'not a multiple of 24'),
    (-24 * 5, 'allocation table'),
    (3 << 20, 'allocation table pointer'),
])
def test_truncated_files(good_file, tmp_path, cut, fragment):
    path = damaged(good_file, tmp_path, lambda d: d[:cut])
    with pytest.raises(FormatError, match=fragment) if cut != -24 * 5 else _fails_on_read(fragment):
        reader = Reader(path)
        verify(path)
        for k in range(reader.num_samples):
            reader[k]


class _fails_on_read:
    """Cutting whole allocation-table entries leaves a well-formed file whose
    table misses entries: verify() must notice."""

    def __init__(self, fragment):
        self.fragment = fragment

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        assert kind is FormatError, kind
        assert 'not an allocation' in str(value) or self.fragment in str(value), str(value)
        return True


def test_wrong_version(good_file, tmp_path):
    def edit(d):
        d[0] = 3
    with pytest.raises(FormatError, match='unsupported .beton version 3'):
        Reader(damaged(good_file, tmp_path, edit))


def test_not_a_beton_file(tmp_path):
    path = tmp_path / 'notes.txt'
    path.write_text('hello, this is not a dataset at all\n' * 10)
    with pytest.raises(FormatError, match='version'):
        Reader(path)


def test_unknown_type_id(good_file, tmp_path):
    def edit(d):
        d[24 + 1041] = 42
    with pytest.raises(FormatError, match="field 'label' has unknown type id 42"):
        Reader(damaged(good_file, tmp_path, edit))


def _metadata_offset(path, field):
    reader = Reader(path)
    row = reader.metadata_type.itemsize
    return reader.metadata_start, row, reader.metadata_type.fields[field][1]


def test_pointer_out_of_range(good_file, tmp_path):
    start, row, offset = _metadata_offset(good_file, 'x')

    def edit(d):
        d[start + 5 * row + offset:start + 5 * row + offset + 8] = (10**12).to_bytes(8, 'little')
    path = damaged(good_file, tmp_path, edit)
    reader = Reader(path)
    assert reader[4][1] == 4  # other samples still read
    with pytest.raises(FormatError, match="sample 5, field 'x'.*outside the data region"):
        reader[5]
    with pytest.raises(FormatError, match="sample 5, field 'x': its data pointer 1000000000000 is outside the "
                                          "data region"):
        verify(path)


def test_corrupted_jpeg(good_file, tmp_path):
    reader = Reader(good_file)
    ptr = int(reader.metadata['image']['data_ptr'][7])
    size = reader.allocation_size(ptr)
    reader.close()

    def edit(d):
        d[ptr:ptr + size] = bytes(size)
    path = damaged(good_file, tmp_path, edit)
    with pytest.raises(FormatError, match="sample 7, field 'image'.*does not decode"):
        Reader(path)[7]
    with pytest.raises(FormatError, match='sample 7'):
        verify(path)


def test_bad_image_mode(good_file, tmp_path):
    start, row, offset = _metadata_offset(good_file, 'image')

    def edit(d):
        d[start + 2 * row + offset] = 9
    with pytest.raises(FormatError, match='unknown image mode 9'):
        Reader(damaged(good_file, tmp_path, edit))[2]


def test_overlapping_allocations_fail_verification(good_file, tmp_path):
    reader = Reader(good_file)
    table_ptr = reader.alloc_table_ptr
    first, second = reader.alloc_table[0].copy(), reader.alloc_table[1].copy()
    reader.close()

    def edit(d):
        # make entry 0 claim bytes that entry 1 uses
        grown = int(second['ptr']) - int(first['ptr']) + 4
        d[table_ptr + 16:table_ptr + 24] = grown.to_bytes(8, 'little')
    with pytest.raises(FormatError, match='overlap'):
        verify(damaged(good_file, tmp_path, edit), decode=False)


def test_index_errors(good_file):
    reader = Reader(good_file)
    with pytest.raises(IndexError, match='out of range'):
        reader[20]
    assert reader[-1][1] == 19
    with pytest.raises(KeyError, match="fields are"):
        reader.read_field(0, 'nope')


class Celsius(Field):
    """An application-defined field (type 255), written the FFCV 1.0 way."""

    metadata_type = np.dtype('<f4')

    @staticmethod
    def from_binary(binary):
        return Celsius()

    def to_binary(self):
        return empty_arguments()

    def encode(self, destination, field, malloc):
        destination[0] = field

    def decode(self, metadata, storage):
        return float(metadata)


def test_custom_fields(tmp_path):
    path = tmp_path / 'c.beton'
    DatasetWriter(path, {'t': Celsius(), 'label': IntField()}, progress=False).from_indexed_dataset(
        [(21.5, 1), (-3.0, 2)])
    assert path.read_bytes()[24] == 255
    with pytest.raises(FormatError, match="custom_handlers=\\{'t': FieldClass\\}"):
        Reader(path)
    reader = Reader(path, custom_handlers={'t': Celsius})
    assert reader[0] == (21.5, 1) and reader[1] == (-3.0, 2)
