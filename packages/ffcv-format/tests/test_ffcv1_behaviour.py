"""What FFCV 1.0 did on the writing side, done again: replacing files, the values and
arguments it accepted, positional metadata names, type 255 for field subclasses, one page
per sample, ``from_webdataset`` and the standalone ``MemoryAllocator``."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import webdataset as wds

from ffcv_format import (DatasetWriter, EncodeError, FloatField, FormatError, IntField, NDArrayField, Reader,
                         RGBImageField)
from ffcv_format.memory_allocator import MemoryAllocator, SampleDoesNotFit
from ffcv_format.spec import HEADER_TYPE, MIN_PAGE_SIZE


def write(path, fields, samples, **kwargs):
    kwargs.setdefault('progress', False)
    DatasetWriter(path, fields, **kwargs).from_indexed_dataset(samples)
    return Reader(path)


# ------------------------------------------------------------ replacing an existing file


REPLACER = textwrap.dedent('''
    import sys, time
    import numpy as np
    from ffcv_format import DatasetWriter, IntField, NDArrayField

    target, marker = sys.argv[1], sys.argv[2]

    class Slow:
        def __len__(self):
            return 100_000
        def __getitem__(self, index):
            if index == 100:
                open(marker, 'w').close()
            if index >= 100:
                time.sleep(0.01)
            return index, np.full(30_000, index % 256, np.uint8)

    DatasetWriter(target, {'label': IntField(), 'x': NDArrayField(np.dtype('uint8'), (30_000,))},
                  page_size=1 << 21, num_workers=2, progress=False).from_indexed_dataset(Slow(), chunksize=10)
''')


def test_a_killed_default_writer_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / 'out' / 'data.beton'
    target.parent.mkdir()
    write(target, {'a': IntField()}, [(7,), (8,)])
    before = target.read_bytes()
    script, marker = tmp_path / 'replace.py', tmp_path / 'started'
    script.write_text(REPLACER)
    process = subprocess.Popen([sys.executable, str(script), str(target), str(marker)], stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not marker.exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert target.read_bytes() == before
    assert os.listdir(target.parent) == ['data.beton']
    assert Reader(target)[1] == (8,)


# ------------------------------------------------------------ accepted values and arguments


def test_float_jpeg_quality_and_compress_probability_none(tmp_path):
    field = RGBImageField(write_mode='jpg', jpeg_quality=90.0, compress_probability=None)
    assert field.jpeg_quality == 90 and isinstance(field.jpeg_quality, int)
    assert RGBImageField(jpeg_quality=75.9).jpeg_quality == 75       # FFCV 1.0's int()
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    reader = write(tmp_path / 'x.beton', {'image': field}, [(image,)])
    assert reader.metadata['image']['mode'][0] == 0     # stored as JPEG
    with pytest.raises(ValueError, match="proportion.*compress_probability"):
        RGBImageField(write_mode='proportion', compress_probability=None)
    with pytest.raises(ValueError, match='jpeg_quality'):
        RGBImageField(jpeg_quality=0.5)         # int() gives 0
    with pytest.raises(ValueError, match='jpeg_quality'):
        RGBImageField(jpeg_quality='90')


# ------------------------------------------------------------ positional metadata names


def test_metadata_columns_by_field_name_and_by_position(tmp_path):
    reader = write(tmp_path / 'x.beton', {'index': IntField(), 'value': FloatField()},
                   [(i, i / 2) for i in range(10)])
    np.testing.assert_array_equal(reader.metadata['f0'], np.arange(10))
    np.testing.assert_array_equal(reader.metadata['index'], np.arange(10))
    np.testing.assert_array_equal(reader.metadata['f1'], np.arange(10) / 2)
    assert reader.metadata.dtype.names == ('index', 'value')


def test_a_field_named_like_a_position_keeps_its_name(tmp_path):
    reader = write(tmp_path / 'x.beton', {'f1': IntField(), 'b': IntField()}, [(1, 2)])
    assert reader.metadata['f1'][0] == 1          # the field's name wins
    assert reader.metadata['f0'][0] == 1 and reader.metadata['b'][0] == 2


# ------------------------------------------------------------ field subclasses: type 255


class PaddedText(NDArrayField):
    """An FFCV 1.0 style custom field: a built-in field with its own encode."""

    def __init__(self, length=8):
        super().__init__(np.dtype('uint8'), (length,))

    def encode(self, destination, field, malloc):
        data = np.frombuffer(field.encode('ascii').ljust(self.shape[0], b'\0'), dtype=np.uint8)
        return super().encode(destination, data, malloc)


def test_a_subclass_of_a_builtin_field_is_written_as_application_defined(tmp_path):
    path = tmp_path / 'text.beton'
    DatasetWriter(path, {'text': PaddedText(), 'n': IntField()}, progress=False).from_indexed_dataset(
        [('ab', 1), ('cde', 2)])
    with pytest.raises(FormatError, match=r"application-defined type.*custom_handlers") as info:
        Reader(path)
    assert isinstance(info.value, ValueError)       # what FFCV 1.0 code catches
    reader = Reader(path, custom_handlers={'text': PaddedText})
    assert reader.header['num_fields'] == 2
    assert bytes(reader[1][0]).rstrip(b'\0') == b'cde' and reader[1][1] == 2


def test_a_subclass_declaring_a_type_id_keeps_it(tmp_path):
    class Labels(IntField):
        TYPE_ID = IntField.TYPE_ID

    reader = write(tmp_path / 'x.beton', {'label': Labels()}, [(3,)])
    assert type(reader.handlers['label']) is IntField and reader[0] == (3,)


# ------------------------------------------------------------ one page per sample


def test_the_data_of_a_sample_stays_on_one_page(tmp_path):
    # three 300 KiB arrays per sample on 2 MiB pages: without restarting samples on a
    # fresh page, about one sample in seven would straddle two pages
    shape = (300 * 1024 // 4,)
    fields = {'a': NDArrayField(np.dtype('<f4'), shape), 'b': NDArrayField(np.dtype('<f4'), shape),
              'c': NDArrayField(np.dtype('<f4'), shape), 'i': IntField()}
    samples = [tuple(np.full(shape, 3 * i + k, np.float32) for k in range(3)) + (i,) for i in range(40)]
    reader = write(tmp_path / 'x.beton', fields, samples, page_size=MIN_PAGE_SIZE, num_workers=2)
    pages = {}
    for sample_id, ptr in zip(reader.alloc_table['sample_id'], reader.alloc_table['ptr']):
        pages.setdefault(int(sample_id), set()).add(int(ptr) // MIN_PAGE_SIZE)
    assert sorted(pages) == list(range(40))
    assert all(len(p) == 1 for p in pages.values()), pages
    for i in range(40):
        values = reader[i]
        assert [float(v[0]) for v in values[:3]] == [3 * i, 3 * i + 1, 3 * i + 2] and values[3] == i


def test_a_sample_larger_than_a_page_still_spans_pages(tmp_path):
    shape = (1536 * 1024,)
    fields = {'a': NDArrayField(np.dtype('u1'), shape), 'b': NDArrayField(np.dtype('u1'), shape)}
    samples = [(np.full(shape, i, np.uint8), np.full(shape, 100 + i, np.uint8)) for i in range(3)]
    reader = write(tmp_path / 'x.beton', fields, samples, page_size=MIN_PAGE_SIZE, num_workers=1)
    for i in range(3):
        a, b = reader[i]
        assert (a == i).all() and (b == 100 + i).all()


def test_memory_allocator_on_its_own(tmp_path):
    path = tmp_path / 'pages.bin'
    page = MIN_PAGE_SIZE
    with MemoryAllocator(path, offset_start=HEADER_TYPE.itemsize, page_size=page) as allocator:
        assert allocator.space_left_in_page == 0
        allocator.set_current_sample(0)
        ptr, buffer = allocator.malloc(10)
        buffer[:] = 7
        assert ptr == page       # the first page after the (rounded up) offset
        assert allocator.space_left_in_page == page - 10
        allocator.set_current_sample(1)
        allocator.malloc(page - 100)
        with pytest.raises(SampleDoesNotFit):
            allocator.malloc(200)          # sample 1 does not fit next to sample 0: taken back
        assert allocator.allocations == [(0, page, 10)]
        allocator.set_current_sample(1)
        ptr1, buffer1 = allocator.malloc(page - 100)    # the retry starts a fresh page
        buffer1[:] = 9
        ptr2, _ = allocator.malloc(50)
        assert ptr1 == 2 * page and ptr2 == 2 * page + page - 100
        assert isinstance(SampleDoesNotFit(), MemoryError)
    data = path.read_bytes()
    assert data[page:page + 10] == b'\x07' * 10 and data[page + 10:2 * page] == b'\0' * (page - 10)
    assert data[2 * page:2 * page + 5] == b'\x09' * 5
    assert allocator.allocations == [(0, page, 10), (1, 2 * page, page - 100), (1, 2 * page + page - 100, 50)]


# ------------------------------------------------------------ from_webdataset


def test_from_webdataset_writes_every_shard_in_order(tmp_path):
    shards = []
    for s in range(3):
        path = str(tmp_path / f'shard-{s}.tar')
        with wds.TarWriter(path) as sink:
            for k in range(7 + s):
                i = 100 * s + k
                sink.write({'__key__': f'sample{i:05d}', 'index.cls': i, 'value.pyd': float(np.sin(i))})
        shards.append(path)

    def pipeline(dataset):
        return dataset.decode().to_tuple('index.cls', 'value.pyd')

    out = tmp_path / 'out.beton'
    DatasetWriter(out, {'index': IntField(), 'value': FloatField()}, num_workers=2,
                  progress=False).from_webdataset(shards, pipeline)
    reader = Reader(out)
    expected = [100 * s + k for s in range(3) for k in range(7 + s)]
    assert reader.num_samples == len(expected) == 24
    np.testing.assert_array_equal(reader.metadata['index'], expected)
    np.testing.assert_array_equal(reader.metadata['value'], np.sin(expected))


def test_from_webdataset_reports_a_shard_that_changes(tmp_path):
    path = str(tmp_path / 'shard.tar')
    with wds.TarWriter(path) as sink:
        for i in range(5):
            sink.write({'__key__': f's{i}', 'index.cls': i})
    reads = []

    def pipeline(dataset):      # the second read of the shard (the writing pass) keeps fewer samples
        reads.append(1)
        keep = 5 if len(reads) == 1 else 3
        return list(dataset.decode().to_tuple('index.cls'))[:keep]

    with pytest.raises(EncodeError, match=r"shard .*shard.tar' gave 3 samples, 5 were expected"):
        DatasetWriter(tmp_path / 'out.beton', {'index': IntField()}, num_workers=1,
                      progress=False).from_webdataset([path], pipeline)
    assert not (tmp_path / 'out.beton').exists()


# ------------------------------------------------------------ datasets drawing from numpy's global generator


class SeededNoise:
    """As FFCV 1.0's tests write datasets: numpy's global generator seeded per index."""

    def __len__(self):
        return 3000

    def __getitem__(self, index):
        np.random.seed(index)
        return index, np.random.randint(0, 255, size=500, dtype='u1')


class Plain:
    def __len__(self):
        return 10

    def __getitem__(self, index):
        return (index,)


class Subset:
    def __init__(self, dataset):
        self.dataset = dataset

    def __getitem__(self, index):
        return self.dataset[index]


def test_a_dataset_seeding_numpys_global_generator_gives_its_own_samples(tmp_path):
    from ffcv_format.writer import _draws_from_shared_random
    assert _draws_from_shared_random(SeededNoise()) and _draws_from_shared_random(Subset(SeededNoise()))
    assert not _draws_from_shared_random(Plain()) and not _draws_from_shared_random([(1,), (2,)])
    from ffcv_format import BytesField
    path = tmp_path / 'noise.beton'
    DatasetWriter(path, {'index': IntField(), 'value': BytesField()}, num_workers=2,
                  progress=False).from_indexed_dataset(SeededNoise(), chunksize=5)
    reader = Reader(path)
    dataset = SeededNoise()
    wrong = [i for i in range(3000) if not np.array_equal(reader[i][1], dataset[i][1])]
    assert wrong == []


def test_bytes_field_takes_other_arrays_of_byte_values(tmp_path):
    from ffcv_format import BytesField
    path = tmp_path / 'b.beton'
    DatasetWriter(path, {'b': BytesField()}, progress=False).from_indexed_dataset(
        [(np.zeros(2),), (np.array([1, 255], np.int64),)])
    reader = Reader(path)
    assert reader[0][0].tolist() == [0, 0] and reader[1][0].tolist() == [1, 255]
    with pytest.raises(EncodeError, match=r"not integers from 0 to 255 \(first: np.float64\(0.5\)\)"):
        DatasetWriter(tmp_path / 'c.beton', {'b': BytesField()}, progress=False).from_indexed_dataset(
            [(np.array([0.5, 1.0]),)])


def test_json_unpack_of_a_batch_and_of_one_row():
    from ffcv_format import JSONField
    rows = np.zeros((2, 32), np.uint8)
    for row, text in zip(rows, [b'{"a": 1}', b'[1, "x"]']):
        row[:len(text)] = np.frombuffer(text, np.uint8)
    assert JSONField.unpack(rows) == [{'a': 1}, [1, 'x']]
    assert JSONField.unpack(rows[1]) == [1, 'x']          # one sample: its value, as in FFCV 1.0
    import torch
    assert JSONField.unpack(torch.from_numpy(rows)) == [{'a': 1}, [1, 'x']]
