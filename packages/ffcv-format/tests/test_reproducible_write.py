"""The same samples and settings give the same file, byte for byte, whatever the number of
writer threads and the chunk size, and from run to run; the layout rules still hold (a
sample's data on one page unless it is larger than a page)."""
import hashlib
import os
import time

import numpy as np
import pytest
import webdataset as wds

from ffcv_format import (BytesField, DatasetWriter, EncodeError, IntField, JSONField, NDArrayField, Reader,
                         RGBImageField, verify)
from ffcv_format.fields.base import Field, empty_arguments
from ffcv_format.memory_allocator import MemoryAllocator, SampleDoesNotFit
from ffcv_format.spec import MIN_PAGE_SIZE
from ffcv_format.staging import Piece
from ffcv_format.testing import photo_like_image

PAGE = MIN_PAGE_SIZE
ARRAY_SHAPE = (32, 1024)     # float32: 128 KiB per sample


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def mixed_samples(count=90, seed=0):
    """Images of varied sizes, byte strings (some empty, some of more than half a page),
    arrays and JSON documents: about four samples per 2 MiB page, so that many samples do
    not fit in what is left of a page, and a few samples larger than a page."""
    rng = np.random.default_rng(seed)
    samples = []
    for k in range(count):
        image = photo_like_image(rng, int(rng.integers(8, 160)), int(rng.integers(8, 160)))
        extra = b''
        if k % 11 == 4:     # a sample larger than a page, each allocation smaller than one
            blob = rng.integers(0, 256, int(0.9 * PAGE), dtype=np.uint8).tobytes()
            extra = rng.integers(0, 256, int(0.9 * PAGE), dtype=np.uint8).tobytes()
        elif k % 5 == 0:
            blob = b''
        else:
            blob = rng.integers(0, 256, int(rng.integers(1, 300_000)), dtype=np.uint8).tobytes()
        array = rng.standard_normal(ARRAY_SHAPE).astype(np.float32)
        document = {'k': k, 'text': 'x' * int(rng.integers(0, 200)), 'values': rng.integers(0, 9, 3).tolist()}
        samples.append((image, image, image, blob, extra, array, document, k))
    return samples


def mixed_fields():
    return {'jpg': RGBImageField(write_mode='jpg', jpeg_quality=85),
            'raw': RGBImageField(write_mode='raw'),
            'prop': RGBImageField(write_mode='proportion', compress_probability=0.5),
            'blob': BytesField(), 'extra': BytesField(), 'array': NDArrayField(np.dtype('<f4'), ARRAY_SHAPE),
            'doc': JSONField(), 'label': IntField()}


def sample_pages(reader):
    """{sample: sorted pages its allocations lie on}, {sample: bytes its data takes} and
    {sample: where its last byte ends}."""
    pages, sizes, ends = {}, {}, {}
    for sample, ptr, size in zip(reader.alloc_table['sample_id'].tolist(), reader.alloc_table['ptr'].tolist(),
                                 reader.alloc_table['size'].tolist()):
        pages.setdefault(sample, set()).add(ptr // PAGE)
        assert ptr // PAGE == (ptr + max(size, 1) - 1) // PAGE, f"allocation {ptr}+{size} crosses a page"
        sizes[sample] = sizes.get(sample, 0) + max(size, 1)
        ends[sample] = max(ends.get(sample, 0), ptr + max(size, 1))
    return {s: sorted(p) for s, p in pages.items()}, sizes, ends


def test_mixed_fields_give_the_same_bytes_with_1_2_and_3_workers(tmp_path):
    samples = mixed_samples()
    fields = mixed_fields()
    runs = [(1, 7), (2, 7), (3, 7), (2, 7), (2, 1), (3, 50)]     # (num_workers, chunksize)
    digests = []
    for n, (workers, chunksize) in enumerate(runs):
        path = tmp_path / f'run{n}.beton'
        DatasetWriter(path, fields, page_size=PAGE, num_workers=workers, progress=False
                      ).from_indexed_dataset(samples, chunksize=chunksize)
        digests.append(digest(path))
    assert digests == [digests[0]] * len(runs), list(zip(runs, digests))

    path = tmp_path / 'run0.beton'
    reader = Reader(path)
    verify(path)
    # the file holds the samples...
    modes = reader.metadata['prop']['mode']
    assert 0 < (modes == 0).sum() < len(samples)     # proportion stored some as JPEG, some raw
    for k, (image, _, _, blob, extra, array, document, label) in enumerate(samples):
        _, raw, prop, got_blob, got_extra, got_array, got_doc, got_label = reader[k]
        np.testing.assert_array_equal(raw, image)
        if modes[k] == 1:
            np.testing.assert_array_equal(prop, image)
        assert got_blob.tobytes() == blob and got_extra.tobytes() == extra
        np.testing.assert_array_equal(got_array, array)
        assert got_doc == document and got_label == label
    # ...laid out by the rules: a sample that fits in a page is on one page, a larger one spans
    pages, sizes, ends = sample_pages(reader)
    assert all(len(pages[s]) == 1 for s in pages if sizes[s] <= PAGE)
    large = [s for s in pages if sizes[s] > PAGE]
    assert large and all(len(pages[s]) >= 2 for s in large)
    # and samples often did not fit in what was left of the previous one's page: they
    # moved to a fresh page (without that rule they would have straddled two)
    moved = [s for s in range(1, len(samples))
             if sizes[s] <= PAGE and pages[s][0] > pages[s - 1][-1]
             and 0 < PAGE - ends[s - 1] % PAGE < sizes[s]]
    assert len(moved) >= 10, moved


def test_same_bytes_as_allocating_one_sample_after_the_other(tmp_path):
    """The writer's pages are those a single MemoryAllocator fills with malloc, one sample
    after the other (FFCV 1.0's one-thread layout), whatever the number of threads."""
    rng = np.random.default_rng(3)
    def blob(size):
        return rng.integers(0, 256, int(size), dtype=np.uint8).tobytes()

    samples = [(blob(rng.choice([0, 10, 400_000, 900_000, 1_500_000])), blob(rng.integers(0, 700_000)))
               for _ in range(60)]
    fields = {'a': BytesField(), 'b': BytesField()}
    path = tmp_path / 'w.beton'
    DatasetWriter(path, fields, page_size=PAGE, num_workers=3, progress=False
                  ).from_indexed_dataset(samples, chunksize=4)
    reader = Reader(path)
    data_start = int(reader.alloc_table['ptr'].min()) // PAGE * PAGE
    expected_path = tmp_path / 'by_malloc.bin'
    with MemoryAllocator(expected_path, offset_start=data_start, page_size=PAGE) as allocator:
        for k, sample in enumerate(samples):
            while True:
                allocator.set_current_sample(k)
                try:
                    for value in sample:
                        ptr, buffer = allocator.malloc(len(value))
                        buffer[:] = np.frombuffer(value, np.uint8)
                    break
                except SampleDoesNotFit:
                    continue
    table = sorted(allocator.allocations, key=lambda entry: entry[1])
    assert [tuple(int(x) for x in row) for row in reader.alloc_table] == table
    written = path.read_bytes()[data_start:reader.alloc_table_ptr]
    expected = expected_path.read_bytes()[data_start:]
    assert written == expected + bytes(len(written) - len(expected))


class LongerThanItSays:
    """An iterable whose length hint is far below the number of samples it yields."""

    def __init__(self, count, hint):
        self.count, self.hint = count, hint

    def __length_hint__(self):
        return self.hint

    def __iter__(self):
        for k in range(self.count):
            yield k, bytes([k % 251]) * (k % 37), {'k': k}


def test_from_iterable_with_more_samples_than_its_hint(tmp_path):
    # 60k rows of 40 bytes (2.4 MB) do not fit before the first page the hint left room
    # for: the pages are moved once the count is known.
    count = 60_000
    fields = {'label': IntField(), 'blob': BytesField(), 'doc': JSONField()}
    digests = []
    for workers in (1, 2, 3):
        path = tmp_path / f'it{workers}.beton'
        DatasetWriter(path, fields, page_size=PAGE, num_workers=workers, progress=False
                      ).from_iterable(LongerThanItSays(count, hint=10), chunksize=500)
        digests.append(digest(path))
    assert digests == [digests[0]] * 3
    reader = Reader(tmp_path / 'it1.beton')
    assert reader.num_samples == count
    assert reader.alloc_table['ptr'].min() >= 2 * PAGE        # the pages were moved
    for k in range(0, count, 997):
        label, blob, doc = reader[k]
        assert label == k and blob.tobytes() == bytes([k % 251]) * (k % 37) and doc == {'k': k}
    verify(tmp_path / 'it1.beton', decode=False)


def test_from_iterable_generator_without_length(tmp_path):
    def generate():
        for k in range(3000):
            yield k, np.full(1000, k, np.float32)

    fields = {'label': IntField(), 'array': NDArrayField(np.dtype('<f4'), (1000,))}
    digests = []
    for workers in (1, 3):
        path = tmp_path / f'g{workers}.beton'
        DatasetWriter(path, fields, page_size=PAGE, num_workers=workers, progress=False
                      ).from_iterable(generate(), chunksize=64)
        digests.append(digest(path))
    assert digests[0] == digests[1]
    reader = Reader(tmp_path / 'g3.beton')
    assert reader.num_samples == 3000 and (reader[2999][1] == 2999).all()


def test_from_webdataset_gives_the_same_bytes_with_1_2_and_3_workers(tmp_path):
    rng = np.random.default_rng(4)
    shards, expected = [], []
    for s in range(4):
        path = str(tmp_path / f'shard-{s}.tar')
        with wds.TarWriter(path) as sink:
            for k in range(5 + 3 * s):
                i = 100 * s + k
                blob = rng.integers(0, 256, int(rng.integers(0, 900_000)), dtype=np.uint8).tobytes()
                sink.write({'__key__': f'sample{i:05d}', 'index.cls': i, 'blob.bin': blob})
                expected.append((i, blob))
        shards.append(path)

    def pipeline(dataset):
        return dataset.to_tuple('index.cls', 'blob.bin').map_tuple(lambda b: int(b), lambda b: b)

    digests = []
    for workers in (1, 2, 3):
        out = tmp_path / f'wds{workers}.beton'
        DatasetWriter(out, {'index': IntField(), 'blob': BytesField()}, page_size=PAGE, num_workers=workers,
                      progress=False).from_webdataset(shards, pipeline)
        digests.append(digest(out))
    assert digests == [digests[0]] * 3
    reader = Reader(tmp_path / 'wds2.beton')
    got = [reader[k] for k in range(reader.num_samples)]
    assert [(label, blob.tobytes()) for label, blob in got] == expected


class SlowStart:
    """Samples of 300 KB whose first ten take long to read: the chunks behind the first one
    are encoded long before their turn."""

    def __len__(self):
        return 120

    def __getitem__(self, index):
        if index < 10:
            time.sleep(0.03)
        return index, np.full(300_000 + index, index % 251, np.uint8).tobytes()


def test_data_waiting_beyond_the_memory_budget_goes_to_temporary_files(tmp_path, monkeypatch):
    fields = {'label': IntField(), 'blob': BytesField()}
    reference = tmp_path / 'reference.beton'
    DatasetWriter(reference, fields, page_size=PAGE, num_workers=1, progress=False
                  ).from_indexed_dataset(SlowStart(), chunksize=10)
    spilled = []
    spill_to = Piece.spill_to

    def spy(piece, directory, path):
        spilled.append((piece.nbytes, directory))
        return spill_to(piece, directory, path)

    monkeypatch.setattr(Piece, 'spill_to', spy)
    monkeypatch.setattr(DatasetWriter, '_staging_budget', lambda self: 1 << 20)
    out = tmp_path / 'out' / 'spilled.beton'
    out.parent.mkdir()
    DatasetWriter(out, fields, page_size=PAGE, num_workers=3, progress=False
                  ).from_indexed_dataset(SlowStart(), chunksize=10)
    assert len(spilled) >= 3 and {directory for _, directory in spilled} == {str(out.parent)}
    assert digest(out) == digest(reference)
    assert os.listdir(out.parent) == ['spilled.beton']     # the temporary files are gone


# ------------------------------------------------------------ fields that declare no pointer_names


class Blob(Field):
    """An application's field that stores bytes but declares no ``pointer_names``: the writer
    cannot set its pointers after the fact. ``None`` stores nothing."""

    metadata_type = np.dtype([('where', '<u8'), ('length', '<u8')])

    @staticmethod
    def from_binary(binary):
        return Blob()

    def to_binary(self):
        return empty_arguments()

    def encode(self, destination, value, malloc):
        if value is None:
            return
        ptr, buffer = malloc(len(value))
        buffer[:] = np.frombuffer(value, np.uint8)
        destination['where'], destination['length'] = ptr, len(value)


def blob_samples(first_allocating):
    return [(k, bytes([k % 256]) * (k * 7919 % 90_000),
             None if k < first_allocating else bytes([k % 13]) * (k % 5000)) for k in range(300)]


def read_blob(reader, k):
    where, length = (int(v) for v in reader.metadata['c'][k])
    return bytes(reader.buffer[where:where + length])


def test_a_field_without_pointer_names_that_allocates_keeps_threads_placing_data(tmp_path):
    # Sample 150 (row 3 of its chunk of 7) is the first in which the field allocates: from
    # there on, threads place data themselves; everything before and after reads back.
    samples = blob_samples(first_allocating=150)
    fields = {'label': IntField(), 'b': BytesField(), 'c': Blob()}
    paths = []
    for n, workers in enumerate((1, 1, 2, 3)):
        path = tmp_path / f'blob{n}.beton'
        DatasetWriter(path, fields, page_size=PAGE, num_workers=workers, progress=False
                      ).from_indexed_dataset(samples, chunksize=7)
        paths.append(path)
        reader = Reader(path, custom_handlers={'c': Blob})
        for k, (label, data, blob) in enumerate(samples):
            assert reader.read_field(k, 'label') == label
            assert reader.read_field(k, 'b').tobytes() == data
            if blob is not None:
                assert read_blob(reader, k) == blob
        verify(path, decode=False, custom_handlers={'c': Blob})
        pages, _, _ = sample_pages(reader)
        assert all(len(pages[s]) == 1 for s in pages)
    assert digest(paths[0]) == digest(paths[1])        # one thread: the same from run to run


def test_a_field_without_pointer_names_that_never_allocates_changes_nothing(tmp_path):
    samples = blob_samples(first_allocating=10 ** 9)
    fields = {'label': IntField(), 'b': BytesField(), 'c': Blob()}
    digests = []
    for workers in (1, 2, 3):
        path = tmp_path / f'none{workers}.beton'
        DatasetWriter(path, fields, page_size=PAGE, num_workers=workers, progress=False
                      ).from_indexed_dataset(samples, chunksize=7)
        digests.append(digest(path))
    assert digests == [digests[0]] * 3


class PointsElsewhere(BytesField):
    """Declares its pointer but stores one past the end of its allocation."""

    def encode(self, destination, field, malloc):
        super().encode(destination, field, malloc)
        destination['ptr'] += len(field) + 1


def test_a_pointer_outside_the_samples_allocations_is_an_error(tmp_path):
    path = tmp_path / 'bad.beton'
    writer = DatasetWriter(path, {'p': PointsElsewhere()}, progress=False)
    expected = r"sample 0, field 'p' \(PointsElsewhere\): its pointer 'ptr'"
    with pytest.raises(EncodeError, match=expected) as info:
        writer.from_indexed_dataset([(b'abc',), (b'de',)])
    assert info.value.sample_id == 0 and info.value.field == 'p'
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------ MemoryAllocator.store_samples


def test_store_samples_places_as_malloc_does(tmp_path):
    rng = np.random.default_rng(8)
    samples = []
    for k in range(300):
        sizes = rng.choice([0, 1, 500, 40_000, 300_000, 700_000, 1_200_000], size=int(rng.integers(1, 5)),
                           p=[0.15, 0.15, 0.2, 0.2, 0.15, 0.1, 0.05])
        samples.append([rng.integers(0, 256, int(size), dtype=np.uint8) for size in sizes])
    by_malloc = tmp_path / 'malloc.bin'
    with MemoryAllocator(by_malloc, offset_start=PAGE, page_size=PAGE) as allocator:
        expected = [allocator.store_sample(k, sample) for k, sample in enumerate(samples)]
        expected_allocations = allocator.allocations
    assert any(sum(max(len(d), 1) for d in sample) > PAGE for sample in samples)

    # the same samples in batches of 1 to 60, their bytes packed and cut into segments
    by_batches = tmp_path / 'batches.bin'
    with MemoryAllocator(by_batches, offset_start=PAGE, page_size=PAGE) as allocator:
        got = []
        k = 0
        while k < len(samples):
            batch = samples[k:k + int(rng.integers(1, 60))]
            data = [d if d.size else np.zeros(1, np.uint8) for sample in batch for d in sample]
            packed = np.concatenate(data)
            cuts = np.cumsum([d.size for d in data])[:-1]
            chosen = []
            if cuts.size:
                chosen = sorted(set(rng.choice(cuts, size=min(3, cuts.size), replace=False).tolist()))
            bounds = [0] + chosen + [packed.size]
            segments = [(lo, packed[lo:hi].copy()) for lo, hi in zip(bounds[:-1], bounds[1:])]
            pointers = allocator.store_samples(list(range(k, k + len(batch))), [len(s) for s in batch],
                                               [d.size for s in batch for d in s], segments)
            got += np.split(pointers.tolist(), np.cumsum([len(s) for s in batch])[:-1])
            k += len(batch)
        got_allocations = allocator.allocations
    assert [list(map(int, p)) for p in got] == expected
    assert sorted(got_allocations) == sorted(expected_allocations)
    assert by_batches.read_bytes() == by_malloc.read_bytes()


def test_store_samples_checks_its_arguments(tmp_path):
    with MemoryAllocator(tmp_path / 'x.bin', offset_start=PAGE, page_size=PAGE) as allocator:
        with pytest.raises(ValueError, match='add up to the number of sizes'):
            allocator.store_samples([0], [2], [3], np.zeros(3, np.uint8))
        with pytest.raises(ValueError, match='no data for bytes 2 to 4'):
            allocator.store_samples([0], [1], [4], [(0, np.zeros(2, np.uint8))])



def test_a_shard_that_grows_between_its_two_reads_is_reported(tmp_path):
    path = str(tmp_path / 'shard.tar')
    with wds.TarWriter(path) as sink:
        for i in range(6):
            sink.write({'__key__': f's{i}', 'index.cls': i})
    reads = []

    def pipeline(dataset):      # the writing pass (the second read) yields one sample more
        reads.append(1)
        samples = list(dataset.to_tuple('index.cls').map_tuple(int))
        return samples[:4] if len(reads) == 1 else samples[:5]

    expected = r"shard .*shard.tar' gave more than 4 samples, 4 were expected"
    with pytest.raises(EncodeError, match=expected) as info:
        DatasetWriter(tmp_path / 'out.beton', {'index': IntField()}, num_workers=2,
                      progress=False).from_webdataset([path], pipeline)
    assert info.value.sample_id == 4
    assert sorted(os.listdir(tmp_path)) == ['shard.tar']
