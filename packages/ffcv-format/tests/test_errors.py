"""Bad input gets an error that names the sample, the field and the problem."""
import os

import numpy as np
import pytest

from ffcv_format import (BytesField, DatasetWriter, EncodeError, FloatField, ImageField, IntField,
                         JSONField, NDArrayField, OutputExistsError, Reader, RGBImageField)
from ffcv_format.writer import default_num_workers


class Samples:
    """A dataset whose sample `bad_index` is `bad`; every other one is `good`."""

    def __init__(self, good, bad, bad_index=3, length=10):
        self.good, self.bad, self.bad_index, self.length = good, bad, bad_index, length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return self.bad if index == self.bad_index else self.good


def write(path, fields, dataset, **kwargs):
    kwargs.setdefault('progress', False)
    DatasetWriter(path, fields, page_size=1 << 21, **kwargs).from_indexed_dataset(dataset, chunksize=4)


def expect_encode_error(tmp_path, fields, good, bad, *fragments):
    path = tmp_path / 'bad.beton'
    with pytest.raises(EncodeError) as info:
        write(path, fields, Samples(good, bad))
    message = str(info.value)
    assert 'sample 3' in message
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.sample_id == 3
    assert not path.exists()
    assert os.listdir(tmp_path) == []
    return info.value


def test_ndarray_wrong_dtype(tmp_path):
    fields = {'label': IntField(), 'x': NDArrayField(np.dtype('float32'), (3, 5))}
    error = expect_encode_error(tmp_path, fields, (0, np.zeros((3, 5), np.float32)),
                                (0, np.zeros((3, 5), np.float64)), "field 'x'", 'float32', 'float64')
    assert error.field == 'x'


def test_ndarray_wrong_number_of_elements(tmp_path):
    fields = {'x': NDArrayField(np.dtype('float32'), (3, 5))}
    expect_encode_error(tmp_path, fields, (np.zeros((3, 5), np.float32),),
                        (np.zeros((4, 4), np.float32),), "field 'x'", '(3, 5)', '(4, 4)', '15 elements')


def test_ndarray_wrong_dtype_in_the_only_field(tmp_path):
    fields = {'x': NDArrayField(np.dtype('float32'), (2,))}
    expect_encode_error(tmp_path, fields, (np.zeros(2, np.float32),), (np.zeros(2, np.float64),),
                        "field 'x'", 'float32', 'float64')


def test_ndarray_any_shape_with_the_same_elements_is_stored_in_the_declared_shape(tmp_path):
    # FFCV 1.0 accepted these (its linear-regression example stores shape () as (1,))
    fields = {'x': NDArrayField(np.dtype('float32'), (3, 2)), 'y': NDArrayField(np.dtype('float32'), (1,))}
    samples = [(np.arange(6, dtype=np.float32).reshape(2, 3), np.array(7, np.float32)),
               (np.arange(6, dtype=np.float32)[::-1], np.float32(8))]
    write(tmp_path / 'shapes.beton', fields, samples)
    reader = Reader(tmp_path / 'shapes.beton')
    np.testing.assert_array_equal(reader[0][0], np.arange(6, dtype=np.float32).reshape(3, 2))
    np.testing.assert_array_equal(reader[1][0], np.arange(6, dtype=np.float32)[::-1].reshape(3, 2))
    assert reader[0][1].tolist() == [7.0] and reader[1][1].tolist() == [8.0]


def test_ndarray_not_an_array(tmp_path):
    fields = {'x': NDArrayField(np.dtype('float32'), (2,))}
    expect_encode_error(tmp_path, fields, (np.zeros(2, np.float32),), ([1.0, 2.0],), "field 'x'", 'list')


@pytest.mark.parametrize('image,fragment', [
    (np.zeros((8, 8, 3), np.float32), 'uint8'),
    (np.zeros((8, 8, 3, 1), np.uint8), 'HxW or HxWxC'),
    (np.zeros((8,), np.uint8), 'HxW or HxWxC'),
    (np.zeros((0, 8, 3), np.uint8), 'HxW or HxWxC'),
    (np.zeros((8, 8, 4), np.uint8), '3 channel'),
    (np.zeros((8, 8, 2), np.uint8), '3 channel'),
    ('not an image', 'HxWxC uint8 array'),
])
def test_bad_images(tmp_path, image, fragment):
    fields = {'image': RGBImageField(), 'label': IntField()}
    expect_encode_error(tmp_path, fields, (np.zeros((8, 8, 3), np.uint8), 1), (image, 1),
                        "field 'image'", fragment)


def test_bad_image_for_grayscale_field(tmp_path):
    fields = {'image': ImageField(channels=1)}
    expect_encode_error(tmp_path, fields, (np.zeros((8, 8), np.uint8),),
                        (np.zeros((8, 8, 3), np.uint8),), "field 'image'", '1 channel', '(8, 8, 3)')


def test_json_not_encodable(tmp_path):
    expect_encode_error(tmp_path, {'doc': JSONField()}, ({'a': 1},), ({'a': {1, 2}},),
                        "field 'doc'", 'JSON', 'set')


def test_wrong_scalar_types(tmp_path):
    expect_encode_error(tmp_path, {'label': IntField()}, (1,), (2.5,), "field 'label'", 'integer', '2.5')
    expect_encode_error(tmp_path, {'label': IntField()}, (1,), (2**64,), "field 'label'", 'out of range')
    expect_encode_error(tmp_path, {'w': FloatField()}, (1.0,), ('1.0',), "field 'w'", 'real number')
    expect_encode_error(tmp_path, {'b': BytesField()}, (b'x',), ('text',), "field 'b'", 'bytes')


def test_wrong_number_of_values(tmp_path):
    fields = {'image': RGBImageField(), 'label': IntField()}
    expect_encode_error(tmp_path, fields, (np.zeros((4, 4, 3), np.uint8), 1), (np.zeros((4, 4, 3), np.uint8),),
                        'has 1 value(s)', '2 field(s)', "['image', 'label']")


def test_sample_too_large_for_a_page(tmp_path):
    expect_encode_error(tmp_path, {'x': BytesField()}, (b'small',), (bytes(3_000_000),),
                        "field 'x'", '3000000 bytes', 'page_size=4194304')


def test_dataset_exception_keeps_its_type_and_says_where(tmp_path):
    class Broken:
        def __len__(self):
            return 10

        def __getitem__(self, index):
            if index == 6:
                raise KeyError('missing file')
            return (index,)

    path = tmp_path / 'x.beton'
    with pytest.raises(KeyError) as info:
        write(path, {'label': IntField()}, Broken())
    assert any('index 6' in note for note in info.value.__notes__)
    assert not path.exists()


@pytest.mark.parametrize('name', ['a_name_of_17_byte', '', 'naïve'])
def test_bad_field_names(tmp_path, name):
    with pytest.raises(ValueError) as info:
        DatasetWriter(tmp_path / 'x.beton', {name: IntField()})
    assert repr(name) in str(info.value)


def test_bad_writer_arguments(tmp_path):
    path = tmp_path / 'x.beton'
    with pytest.raises(ValueError, match='power of two'):
        DatasetWriter(path, {'a': IntField()}, page_size=3 << 20)
    with pytest.raises(ValueError, match='2 MiB'):
        DatasetWriter(path, {'a': IntField()}, page_size=4096)
    with pytest.raises(TypeError, match="field 'a' must be a Field"):
        DatasetWriter(path, {'a': int})
    with pytest.raises(ValueError, match='non-empty'):
        DatasetWriter(path, {})
    with pytest.raises(ValueError, match='num_workers'):
        DatasetWriter(path, {'a': IntField()}, num_workers=2.5)
    # as in FFCV 1.0, any value below 1 means all cores
    assert DatasetWriter(path, {'a': IntField()}, num_workers=0).num_workers == default_num_workers()
    with pytest.raises(IndexError, match='index 10 is out of range'):
        DatasetWriter(path, {'a': IntField()}, progress=False).from_indexed_dataset([(1,)] * 10, indices=[10])
    with pytest.raises(FileNotFoundError, match='directory'):
        DatasetWriter(tmp_path / 'missing' / 'x.beton', {'a': IntField()}, progress=False).from_indexed_dataset([(1,)])


def test_bad_field_arguments():
    with pytest.raises(ValueError, match='write_mode'):
        RGBImageField(write_mode='jpeg')
    with pytest.raises(ValueError, match='jpeg_quality'):
        RGBImageField(jpeg_quality=101)
    with pytest.raises(ValueError, match='alpha'):
        ImageField(channels=4, write_mode='jpg')
    with pytest.raises(ValueError, match='min_resolution'):
        RGBImageField(min_resolution=300, max_resolution=256)
    with pytest.raises(ValueError, match='interpolation'):
        RGBImageField(interpolation='bilinear')
    with pytest.raises(ValueError, match='dimensions'):
        NDArrayField(np.dtype('float32'), ())
    with pytest.raises(ValueError, match='positive'):
        NDArrayField(np.dtype('float32'), (3, 0))
    with pytest.raises(ValueError, match='plain numeric dtype'):
        NDArrayField(np.dtype([('a', 'f4'), ('b', 'i4')]), (2,))


def test_existing_file_is_replaced_by_default_and_kept_with_overwrite_false(tmp_path):
    path = tmp_path / 'x.beton'
    path.write_bytes(b'precious')
    with pytest.raises(FileExistsError, match='overwrite=True') as info:
        DatasetWriter(path, {'a': IntField()}, overwrite=False)
    assert isinstance(info.value, OutputExistsError) and info.value.path == str(path)
    assert path.read_bytes() == b'precious'
    DatasetWriter(path, {'a': IntField()}, progress=False).from_indexed_dataset([(1,), (2,)])
    assert Reader(path).num_samples == 2        # replaced, as FFCV 1.0 and numpy.save do
    DatasetWriter(path, {'a': IntField()}, progress=False).from_indexed_dataset([(5,)])
    assert Reader(path)[0] == (5,)


def test_failed_write_leaves_existing_file_untouched(tmp_path):
    path = tmp_path / 'x.beton'
    path.write_bytes(b'precious')
    with pytest.raises(EncodeError):
        write(path, {'a': IntField()}, Samples((1,), ('nope',), bad_index=7), overwrite=True)
    assert path.read_bytes() == b'precious'
    assert sorted(os.listdir(tmp_path)) == ['x.beton']
