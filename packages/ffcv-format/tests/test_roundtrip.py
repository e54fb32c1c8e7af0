"""Write then read back every field type and image mode."""
import json
import os

import cv2
import numpy as np
import pytest

from ffcv_format import (BytesField, DatasetWriter, FloatField, ImageField, IntField, JSONField,
                         NDArrayField, Reader, RGBImageField, verify)
from ffcv_format.fields.image import target_size
from ffcv_format.testing import mean_abs_diff, photo_like_image, write_dataset

PAGE = 1 << 21


def test_scalars_exact(tmp_path):
    ints = [0, 1, -1, 2**63 - 1, -2**63, 123456789012345]
    floats = [0.0, -0.0, 1.5, float('inf'), -1e308, 5e-324]
    reader = write_dataset(tmp_path / 's.beton', {'i': IntField(), 'f': FloatField()},
                           list(zip(ints, floats)))
    assert reader.num_samples == 6
    assert [reader[k] for k in range(6)] == list(zip(ints, floats))
    assert isinstance(reader[0][0], int) and isinstance(reader[0][1], float)
    nan = write_dataset(tmp_path / 'n.beton', {'f': FloatField()}, [(float('nan'),)])
    assert np.isnan(nan[0][0])


def test_numpy_scalars_are_accepted(tmp_path):
    reader = write_dataset(tmp_path / 's.beton', {'i': IntField(), 'f': FloatField()},
                           [(np.int32(7), np.float32(0.5)), (np.uint8(255), np.int64(3))])
    assert reader[0] == (7, 0.5) and reader[1] == (255, 3.0)


def test_bytes_and_json(tmp_path):
    rng = np.random.default_rng(0)
    blobs = [b'', b'\x00', bytes(rng.integers(0, 256, 5000, dtype=np.uint8)),
             bytearray(b'abc'), np.arange(10, dtype=np.uint8)]
    docs = [{}, {'a': [1, 2, {'b': None}]}, 'héllo ✓ \x00 inside', [1.5, True, None], 12]
    reader = write_dataset(tmp_path / 'b.beton', {'blob': BytesField(), 'doc': JSONField()},
                           list(zip(blobs, docs)))
    for k, (blob, doc) in enumerate(zip(blobs, docs)):
        got_blob, got_doc = reader[k]
        assert got_blob.dtype == np.uint8
        assert got_blob.tobytes() == bytes(blob)
        assert got_doc == doc
    verify(tmp_path / 'b.beton')


@pytest.mark.parametrize('dtype,shape', [
    ('float32', (3, 5)), ('float16', (7,)), ('int64', (2, 2, 2)), ('uint8', (1000,)),
    ('bool', (4,)), ('complex64', (3,)), ('>i4', (5,)),
])
def test_ndarray(tmp_path, dtype, shape):
    rng = np.random.default_rng(1)
    arrays = [(rng.normal(size=shape) * 100).astype(dtype) for _ in range(20)]
    reader = write_dataset(tmp_path / 'a.beton', {'x': NDArrayField(np.dtype(dtype), shape)},
                           [(a,) for a in arrays])
    handler = reader.handlers['x']
    assert handler.dtype == np.dtype(dtype) and handler.shape == shape
    for k, a in enumerate(arrays):
        got = reader[k][0]
        assert got.dtype == a.dtype and got.shape == a.shape
        assert got.tobytes() == a.tobytes()


def test_torch_tensor_field(tmp_path):
    torch = pytest.importorskip('torch')
    from ffcv_format import TorchTensorField
    tensors = [torch.arange(12, dtype=torch.float32).reshape(3, 4) * k for k in range(5)]
    labels = [torch.tensor([k, -k], dtype=torch.int64) for k in range(5)]
    reader = write_dataset(tmp_path / 't.beton', {'x': TorchTensorField(torch.float32, (3, 4)),
                                                 'y': TorchTensorField(torch.int64, (2,))},
                           list(zip(tensors, labels)))
    assert type(reader.handlers['x']).__name__ == 'TorchTensorField'
    for k in range(5):
        x, y = reader[k]
        np.testing.assert_array_equal(x, tensors[k].numpy())
        np.testing.assert_array_equal(y, labels[k].numpy())
    with pytest.raises(ValueError, match='bfloat16'):
        TorchTensorField(torch.bfloat16, (2,))


def _images(rng, count, channels=3, low=8, high=120):
    return [photo_like_image(rng, int(rng.integers(low, high)), int(rng.integers(low, high)), channels)
            for _ in range(count)]


def test_raw_images_of_varied_sizes_are_exact(tmp_path):
    images = _images(np.random.default_rng(2), 50)
    images.append(np.zeros((1, 1, 3), np.uint8))
    reader = write_dataset(tmp_path / 'r.beton', {'image': RGBImageField(), 'label': IntField()},
                           [(im, k) for k, im in enumerate(images)])
    assert type(reader.handlers['image']) is RGBImageField
    for k, im in enumerate(images):
        got, label = reader[k]
        assert label == k
        np.testing.assert_array_equal(got, im)


@pytest.mark.parametrize('quality,max_error', [(95, 3.0), (90, 4.0), (50, 8.0)])
def test_jpeg_images_within_loss(tmp_path, quality, max_error):
    images = _images(np.random.default_rng(3), 20, low=32, high=160)
    reader = write_dataset(tmp_path / 'j.beton',
                           {'image': RGBImageField(write_mode='jpg', jpeg_quality=quality)},
                           [(im,) for im in images])
    modes = reader.metadata['image']['mode']
    assert (modes == 0).all()
    for k, im in enumerate(images):
        got = reader[k][0]
        assert got.shape == im.shape
        assert mean_abs_diff(got, im) < max_error
        # exactly what a standard JPEG encode/decode at that quality gives
        ok, data = cv2.imencode('.jpg', im[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        np.testing.assert_array_equal(got, cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])


def test_lower_quality_makes_smaller_files(tmp_path):
    images = _images(np.random.default_rng(4), 20, low=64, high=128)
    sizes = {}
    for quality in (50, 95):
        reader = write_dataset(tmp_path / f'q{quality}.beton',
                               {'image': RGBImageField(write_mode='jpg', jpeg_quality=quality)},
                               [(im,) for im in images])
        sizes[quality] = int(reader.alloc_table['size'].sum())
    assert sizes[50] < sizes[95]


def test_smart_mode_compresses_only_large_images(tmp_path):
    rng = np.random.default_rng(5)
    small, large = photo_like_image(rng, 10, 10), photo_like_image(rng, 100, 100)
    field = RGBImageField(write_mode='smart', smart_threshold=1000)
    reader = write_dataset(tmp_path / 's.beton', {'image': field}, [(small,), (large,)])
    assert list(reader.metadata['image']['mode']) == [1, 0]
    np.testing.assert_array_equal(reader[0][0], small)
    assert mean_abs_diff(reader[1][0], large) < 4
    all_raw = write_dataset(tmp_path / 'n.beton', {'image': RGBImageField(write_mode='smart')},
                            [(large,)])
    assert list(all_raw.metadata['image']['mode']) == [1]


def test_proportion_mode_is_deterministic_across_workers(tmp_path):
    images = _images(np.random.default_rng(6), 200, low=8, high=24)
    modes = []
    for workers in (1, 2):
        reader = write_dataset(tmp_path / f'p{workers}.beton',
                               {'image': RGBImageField(write_mode='proportion', compress_probability=0.3)},
                               [(im,) for im in images], num_workers=workers, chunksize=7)
        modes.append(reader.metadata['image']['mode'].copy())
        for k, im in enumerate(images):
            got = reader[k][0]
            if modes[-1][k] == 1:
                np.testing.assert_array_equal(got, im)
            else:
                assert mean_abs_diff(got, im) < 8
    np.testing.assert_array_equal(modes[0], modes[1])
    share = (modes[0] == 0).mean()
    assert 0.2 < share < 0.4


def test_max_resolution_matches_opencv_area_resize(tmp_path):
    rng = np.random.default_rng(7)
    images = [photo_like_image(rng, h, w) for h, w in [(100, 199), (199, 100), (64, 64), (30, 40), (150, 151)]]
    reader = write_dataset(tmp_path / 'm.beton', {'image': RGBImageField(max_resolution=64)},
                           [(im,) for im in images])
    for k, im in enumerate(images):
        h, w = im.shape[:2]
        ratio = 64 / max(h, w)
        expected = im if ratio >= 1 else cv2.resize(im, (int(w * ratio), int(h * ratio)),
                                                    interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(reader[k][0], expected)


def test_min_resolution_and_interpolation(tmp_path):
    rng = np.random.default_rng(8)
    image = photo_like_image(rng, 20, 50)
    fields = {'grown': RGBImageField(min_resolution=40, interpolation='cubic'),
              'capped': RGBImageField(min_resolution=40, max_resolution=80, interpolation='cubic'),
              'nearest': RGBImageField(max_resolution=25, interpolation='nearest')}
    reader = write_dataset(tmp_path / 'm.beton', fields, [(image, image, image)])
    grown, capped, nearest = reader[0]
    # the shorter side grows to min_resolution
    np.testing.assert_array_equal(grown, cv2.resize(image, (100, 40), interpolation=cv2.INTER_CUBIC))
    # when growing would pass max_resolution, max_resolution wins
    np.testing.assert_array_equal(capped, cv2.resize(image, (80, 32), interpolation=cv2.INTER_CUBIC))
    np.testing.assert_array_equal(nearest, cv2.resize(image, (25, 10), interpolation=cv2.INTER_NEAREST))
    assert target_size(20, 50, max_resolution=None, min_resolution=40) == (40, 100)
    assert target_size(20, 50, max_resolution=80, min_resolution=40) == (32, 80)
    assert target_size(3, 2000, max_resolution=256) == (1, 256)  # never a zero side


def test_grayscale_rgba_and_png(tmp_path):
    rng = np.random.default_rng(9)
    gray = _images(rng, 10, channels=1)
    rgba = _images(rng, 10, channels=4)
    fields = {
        'gray_raw': ImageField(channels=1),
        'gray_png': ImageField(channels=1, write_mode='png'),
        'gray_jpg': ImageField(channels=1, write_mode='jpg', jpeg_quality=95),
        'rgba_png': ImageField(channels=4, write_mode='png'),
        'rgba_raw': ImageField(channels=4),
        'rgb_png': RGBImageField(write_mode='png'),
    }
    rgb = _images(rng, 10)
    samples = [(g[:, :, 0], g, g, a, a, c) for g, a, c in zip(gray, rgba, rgb)]
    reader = write_dataset(tmp_path / 'g.beton', fields, samples)
    assert {n: h.channels for n, h in reader.handlers.items()} == {
        'gray_raw': 1, 'gray_png': 1, 'gray_jpg': 1, 'rgba_png': 4, 'rgba_raw': 4, 'rgb_png': 3}
    for k, (g, a, c) in enumerate(zip(gray, rgba, rgb)):
        values = reader[k]
        np.testing.assert_array_equal(values[0], g)
        np.testing.assert_array_equal(values[1], g)
        assert values[2].shape == g.shape and mean_abs_diff(values[2], g) < 3
        np.testing.assert_array_equal(values[3], a)
        np.testing.assert_array_equal(values[4], a)
        np.testing.assert_array_equal(values[5], c)


def test_rgb_field_writes_ffcv1_type_and_extensions_use_type_7(tmp_path):
    write_dataset(tmp_path / 't.beton', {
        'a': RGBImageField(write_mode='jpg'), 'b': RGBImageField(write_mode='png'),
        'c': ImageField(channels=1)}, [(np.zeros((4, 4, 3), np.uint8),) * 2 + (np.zeros((4, 4), np.uint8),)])
    raw = open(tmp_path / 't.beton', 'rb').read()
    type_ids = [raw[24 + 1041 * k] for k in range(3)]
    assert type_ids == [2, 7, 7]


def test_grayscale_into_rgb_field_is_replicated(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    reader = write_dataset(tmp_path / 'g.beton', {'image': RGBImageField()}, [(gray,)])
    np.testing.assert_array_equal(reader[0][0], np.repeat(gray[:, :, None], 3, axis=2))


def test_zero_and_one_sample(tmp_path):
    fields = {'x': NDArrayField(np.dtype('int32'), (3,)), 'label': IntField()}
    empty = write_dataset(tmp_path / 'zero.beton', fields, [])
    assert empty.num_samples == 0 and len(empty.alloc_table) == 0
    with pytest.raises(IndexError):
        empty[0]
    assert verify(tmp_path / 'zero.beton')['num_samples'] == 0
    one = write_dataset(tmp_path / 'one.beton', fields, [(np.array([1, 2, 3], np.int32), 9)])
    assert one.num_samples == 1
    np.testing.assert_array_equal(one[0][0], [1, 2, 3])
    assert one[-1][1] == 9


def test_samples_that_exactly_fill_pages(tmp_path):
    # One sample per page, exactly page_size bytes each.
    full = [np.full(PAGE, k, np.uint8) for k in range(3)]
    reader = write_dataset(tmp_path / 'f.beton', {'x': NDArrayField(np.dtype('uint8'), (PAGE,))},
                           [(a,) for a in full], num_workers=1)
    assert os.path.getsize(tmp_path / 'f.beton') == reader.alloc_table_ptr + 3 * 24
    assert reader.alloc_table_ptr - PAGE == 3 * PAGE  # data starts at the first page boundary
    for k in range(3):
        assert (reader[k][0] == k).all()
    # Two halves per page.
    half = [np.full(PAGE // 2, k, np.uint8) for k in range(4)]
    reader = write_dataset(tmp_path / 'h.beton', {'x': NDArrayField(np.dtype('uint8'), (PAGE // 2,))},
                           [(a,) for a in half], num_workers=1)
    pages = reader.alloc_table['ptr'] // PAGE
    assert np.bincount(pages.astype(np.int64)).max() == 2
    assert all((reader[k][0] == k).all() for k in range(4))
    verify(tmp_path / 'h.beton')


def test_many_small_samples(tmp_path):
    n = 100_000
    samples = [(k, bytes([k % 251]) * (k % 7)) for k in range(n)]
    reader = write_dataset(tmp_path / 'many.beton', {'label': IntField(), 'blob': BytesField()},
                           samples, num_workers=2, chunksize=1000)
    assert reader.num_samples == n
    labels = reader.metadata['label']
    np.testing.assert_array_equal(labels, np.arange(n))
    for k in range(0, n, 997):
        assert reader[k][1].tobytes() == samples[k][1]
    verify(tmp_path / 'many.beton', decode=False)


def test_workers_produce_the_same_samples(tmp_path):
    rng = np.random.default_rng(10)
    samples = [(photo_like_image(rng, 30, 40), k, {'k': k}) for k in range(300)]
    fields = {'image': RGBImageField(write_mode='jpg'), 'label': IntField(), 'doc': JSONField()}
    readers = [write_dataset(tmp_path / f'w{n}.beton', fields, samples, num_workers=n, chunksize=10)
               for n in (1, 2)]
    for k in range(0, 300, 13):
        a, b = readers[0][k], readers[1][k]
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:] == (k, {'k': k})


def test_indices_and_shuffle(tmp_path):
    samples = [(k,) for k in range(50)]
    fields = {'label': IntField()}
    path = tmp_path / 'i.beton'
    DatasetWriter(path, fields, progress=False).from_indexed_dataset(samples, indices=[5, 3, 3, 49])
    assert [r[0] for r in (Reader(path)[k] for k in range(4))] == [5, 3, 3, 49]
    DatasetWriter(path, fields, progress=False, overwrite=True).from_indexed_dataset(
        samples, shuffle_indices=True, seed=1)
    order = list(Reader(path).metadata['label'])
    assert sorted(order) == list(range(50)) and order != list(range(50))
    again = tmp_path / 'j.beton'
    DatasetWriter(again, fields, progress=False).from_indexed_dataset(samples, shuffle_indices=True, seed=1)
    assert list(Reader(again).metadata['label']) == order


def test_from_iterable_without_length_moves_pages(tmp_path):
    # 150k rows of 16 bytes do not fit before the first 2 MiB page: the writer must
    # move the data region once the count is known.
    n = 150_000

    def generate():
        for k in range(n):
            yield k, np.full(4, k % 256, np.uint8)

    path = tmp_path / 'it.beton'
    DatasetWriter(path, {'label': IntField(), 'x': NDArrayField(np.dtype('uint8'), (4,))},
                  page_size=PAGE, progress=False, num_workers=2).from_iterable(generate(), chunksize=500)
    reader = Reader(path)
    assert reader.num_samples == n
    assert reader.alloc_table['ptr'].min() >= 2 * PAGE
    for k in range(0, n, 1499):
        label, x = reader[k]
        assert label == k and (x == k % 256).all()
    verify(path, decode=False)


def test_from_iterable_with_length(tmp_path):
    docs = [{'k': k, 'pad': 'x' * (k % 100)} for k in range(2000)]
    path = tmp_path / 'it.beton'
    DatasetWriter(path, {'doc': JSONField()}, progress=False).from_iterable([(d,) for d in docs])
    reader = Reader(path)
    assert [reader[k][0] for k in range(2000)] == docs
    assert json.loads(json.dumps(docs[5])) == reader[5][0]
