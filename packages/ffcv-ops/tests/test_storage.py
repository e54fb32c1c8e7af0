"""Decoders read through a storage state wherever the pages are (a page cache of the loader's
own keeps them in slots of an arena, in any order)."""
import numpy as np
import pytest
from ffcv_format import BytesField, FormatError, NDArrayField, RGBImageField
from ffcv_format.storage import Allocations
from ffcv_format.testing import photo_like_image, write_dataset

from ffcv_ops import CenterCropRGBImageDecoder
from ffcv_ops.storage import find, find_many, make_storage_state, memory_read, read_at
from ffcv_ops.testing import run_batch, make_pipeline, storage_state_of

N = 90


@pytest.fixture(scope='module')
def multi_page_file(tmp_path_factory):
    rng = np.random.default_rng(12)
    samples = [(rng.integers(0, 256, 50000, dtype=np.uint8),
                photo_like_image(rng, int(rng.integers(40, 90)), int(rng.integers(40, 90))),
                rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes())
               for _ in range(N)]
    fields = {'arr': NDArrayField(np.dtype('u1'), (50000,)), 'img': RGBImageField(write_mode='jpg'),
              'blob': BytesField()}
    reader = write_dataset(tmp_path_factory.mktemp('pages') / 'pages.beton', fields, samples)
    assert reader.file_size > 2 * reader.page_size, "the test needs samples on several pages"
    return reader


def relocated_state(reader, resident=None):
    """Every page copied into a slot of an arena, slots in a scrambled order; pages not in
    ``resident`` are left out (offset -1)."""
    ps = reader.page_size
    num_pages = -(-reader.file_size // ps)
    slots = np.random.default_rng(0).permutation(num_pages)
    arena = np.full(num_pages * ps, 0xEE, dtype=np.uint8)
    offsets = np.full(num_pages, -1, dtype=np.int64)
    for page, slot in enumerate(slots):
        if resident is not None and page not in resident:
            continue
        data = reader.buffer[page * ps:(page + 1) * ps]
        arena[slot * ps:slot * ps + data.size] = data
        offsets[page] = slot * ps
    return make_storage_state(arena, offsets, ps, reader.allocations(), reader.data_region)


@pytest.mark.parametrize('field,ops', [('arr', []), ('blob', []),
                                       ('img', [CenterCropRGBImageDecoder((20, 20))])])
def test_decoders_read_relocated_pages(multi_page_file, field, ops):
    pipeline = make_pipeline(multi_page_file, field, ops)
    pipeline.declare()
    pipeline.generate()
    indices = np.random.default_rng(1).permutation(N)
    direct = run_batch(pipeline, storage_state_of(multi_page_file), indices)
    relocated = run_batch(pipeline, relocated_state(multi_page_file), indices, chunk=11)
    np.testing.assert_array_equal(relocated, direct)
    if field == 'arr':
        expected = np.stack([multi_page_file.read_field(i, 'arr') for i in indices])
        np.testing.assert_array_equal(direct, expected)


def test_reading_a_page_that_is_not_resident_is_an_error(multi_page_file):
    pipeline = make_pipeline(multi_page_file, 'arr', [])
    pipeline.declare()
    pipeline.generate()
    ptr = int(multi_page_file.metadata['arr'][N - 1])
    page = ptr // multi_page_file.page_size
    state = relocated_state(multi_page_file, resident={p for p in range(10) if p != page})
    with pytest.raises(RuntimeError, match='sample 89: the page of its data at [0-9]+ was read before the loader made it resident'):
        run_batch(pipeline, state, np.array([N - 1]))
    starts, sizes = np.zeros(1, np.int64), np.zeros(1, np.int64)
    assert find_many(np.array([ptr], np.uint64), np.array([N - 1]), state, starts, sizes) == (0, 6)  # NOT_RESIDENT


def test_memory_read_gives_whole_allocations(multi_page_file):
    state = relocated_state(multi_page_file)
    for i in [0, 17, N - 1]:
        ptr, size = (int(v) for v in multi_page_file.metadata['blob'][i])
        expected = multi_page_file.read(ptr, size)
        np.testing.assert_array_equal(memory_read(np.uint64(ptr), state), expected)
        np.testing.assert_array_equal(read_at(np.uint64(ptr), size, state), expected)
        assert find(np.uint64(ptr), i, state)[1:] == (multi_page_file.allocation_size(ptr), 0)
    with pytest.raises(ValueError, match='no allocation starts at a data pointer'):
        memory_read(np.uint64(int(multi_page_file.metadata['arr'][3]) + 1), state)


def test_page_size_must_be_a_power_of_two():
    with pytest.raises(ValueError, match='power of two'):
        make_storage_state(np.zeros(10, np.uint8), np.zeros(1, np.int64), 3000,
                           Allocations(*(np.zeros(0, np.uint64),) * 3), (0, 10))


def test_a_corrupted_image_is_reported(multi_page_file):
    ps = multi_page_file.page_size
    arena = np.array(multi_page_file.buffer)      # a copy of the whole file
    ptr = int(multi_page_file.metadata['img'][5]['data_ptr'])
    arena[ptr:ptr + 200] = 0                         # the JPEG header is gone
    num_pages = -(-multi_page_file.file_size // ps)
    state = make_storage_state(arena, np.arange(num_pages) * ps, ps, multi_page_file.allocations(),
                               multi_page_file.data_region)
    pipeline = make_pipeline(multi_page_file, 'img', [CenterCropRGBImageDecoder((8, 8))])
    pipeline.declare()
    pipeline.generate()
    run_batch(pipeline, state, np.array([4, 6]))
    with pytest.raises(FormatError, match=r"sample 5: a stored image does not decode \(corrupted file\?\)"):
        run_batch(pipeline, state, np.array([4, 5, 6]))


def brute_force_find(ptr, sample, table, data_region, page_size):
    """What find() must answer, from the whole table (no index): (size, code)."""
    from ffcv_format.storage import Problem
    if not data_region[0] <= ptr < data_region[1]:
        return 0, Problem.OUTSIDE
    at = [k for k in range(len(table.ptr)) if int(table.ptr[k]) == ptr]
    if not at:
        return 0, Problem.NOT_ALLOCATED
    own = [int(table.size[k]) for k in at if int(table.sample_id[k]) == sample]
    if not own:
        return 0, Problem.OTHER_SAMPLE
    size = max(own)
    if ptr % page_size + size > page_size or ptr + size > data_region[1]:
        return size, Problem.CROSSES_PAGE
    return size, Problem.OK


@pytest.mark.parametrize('seed', range(4))
def test_find_searches_the_page_index_like_the_whole_table(seed):
    """Pointers are looked up among their page's allocations only (ffcv_format.storage's
    page_entries): the same answers as a search of the whole table, for tables with empty
    pages, pages of equal-size allocations, of sizes that vary by orders of magnitude, and
    equal pointers (FFCV 1.0's zero-size allocations)."""
    rng = np.random.default_rng(seed)
    page, num_pages = 1 << 12, 40
    data_start = 2 * page
    ptrs, sizes, owners = [], [], []
    sample = 0
    for p in range(num_pages):
        kind = rng.integers(0, 4)
        if kind == 0:
            continue                                   # an empty page
        offset = 0
        while True:
            size = 64 if kind == 1 else int(rng.choice([0, 1, 7, 300, 2000]))
            if offset + max(size, 1) > page:
                break
            ptr = data_start + p * page + offset
            ptrs.append(ptr), sizes.append(size), owners.append(sample)
            if size == 0 and kind == 3:               # FFCV 1.0: the next allocation shares its pointer
                size = int(rng.integers(1, 50))
                ptrs.append(ptr), sizes.append(size), owners.append(sample + 1)
                sample += 1
            offset += max(size, 1)
            sample += 1
    order = np.argsort(np.asarray(ptrs, dtype=np.uint64), kind='stable')
    table = Allocations(np.asarray(ptrs, np.uint64)[order], np.asarray(sizes, np.uint64)[order],
                        np.asarray(owners, np.uint64)[order])
    data_end = data_start + num_pages * page
    arena = np.zeros(data_end, dtype=np.uint8)
    state = make_storage_state(arena, np.arange(data_end // page + 1, dtype=np.int64) * page, page, table,
                               (data_start, data_end))
    probes = [(int(p), int(s)) for p, s in zip(table.ptr, table.sample_id)]              # every allocation
    probes += [(int(p) + 1, int(s)) for p, s in zip(table.ptr[::7], table.sample_id[::7])]   # inside one
    probes += [(int(x), int(rng.integers(0, sample))) for x in rng.integers(0, data_end + page, 300)]
    probes += [(data_start, 0), (data_end - 1, 0), (data_end, 0), (data_start - 1, 0)]
    for ptr, owner in probes:
        start, size, code = find(ptr, owner, state)
        want_size, want_code = brute_force_find(ptr, owner, table, (data_start, data_end), page)
        assert code == want_code, (ptr, owner)
        if code == 0:
            assert (start, size) == (ptr, want_size), (ptr, owner)


def test_gather_fixed_looks_a_sample_up_once_and_keeps_refusing_a_damaged_one(multi_page_file):
    from ffcv_format.storage import Problem
    from ffcv_ops.kernels.copy import gather_fixed
    from ffcv_ops.storage import sample_bits

    reader = multi_page_file
    state = storage_state_of(reader)
    column = np.asarray(reader.metadata['arr'], dtype=np.uint64)
    bits = sample_bits(N)
    out = np.zeros((4, 50000), np.uint8)
    samples = np.array([3, 40, 7, 88])
    assert gather_fixed(column[samples], samples, 50000, state, out, bits) == (-1, 0)
    for row, s in enumerate(samples):
        np.testing.assert_array_equal(out[row], reader[s][0])
    checked = [s for s in range(N) if bits[s >> 3] & (1 << (s & 7))]
    assert checked == sorted(samples.tolist())              # recorded once read
    # sample 5 given sample 6's pointer: refused, never recorded, refused again
    damaged = np.array([column[6]], dtype=np.uint64)
    for _ in range(2):
        assert gather_fixed(damaged, np.array([5]), 50000, state, out, bits) == (0, Problem.OTHER_SAMPLE)
        assert not bits[5 >> 3] & (1 << 5)
    # a recorded sample is read again from its page, still checked against the data region
    outside = np.array([reader.file_size + (1 << 30)], dtype=np.uint64)
    assert gather_fixed(outside, np.array([3]), 50000, state, out, bits) == (0, Problem.OUTSIDE)
