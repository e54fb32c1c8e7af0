"""Nothing in a file is trusted: each rule of docs/format.md (Validity) is checked before the
value it guards is used, and a file that breaks one is refused naming the file, and for a
sample's data the field and the sample. `Reader.extents` is the one place pointers are
looked up; `verify` reports every problem."""
import numpy as np
import pytest

from ffcv_format import (BytesField, FormatError, ImageField, IntField, JSONField, NDArrayField, Reader, RGBImageField,
                         verify)
from ffcv_format.testing import photo_like_image, write_dataset

PAGE = 1 << 21


@pytest.fixture(scope='module')
def good_file(tmp_path_factory):
    """20 samples: a JPEG image, an int, an int32 array of 4, a JSON document, bytes."""
    rng = np.random.default_rng(0)
    samples = [(photo_like_image(rng, 20, 30), k, np.arange(4, dtype=np.int32) + k, {'k': k},
                bytes([k]) * (k + 3)) for k in range(20)]
    fields = {'image': RGBImageField(write_mode='jpg'), 'label': IntField(),
              'x': NDArrayField(np.dtype('int32'), (4,)), 'doc': JSONField(), 'blob': BytesField()}
    path = tmp_path_factory.mktemp('good') / 'good.beton'
    write_dataset(path, fields, samples, page_size=PAGE)
    return path


def damaged(path, tmp_path, patches, name='damaged.beton'):
    """A copy of ``path`` with ``(offset, bytes)`` patches applied."""
    data = bytearray(path.read_bytes())
    for offset, patch in patches:
        data[offset:offset + len(patch)] = patch
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


def u64(value):
    return int(value % (1 << 64)).to_bytes(8, 'little')


def member_offset(reader, sample, field, member=''):
    """The file offset of ``field[member]`` in sample ``sample``'s metadata row."""
    offset = reader.metadata_start + sample * reader.metadata_type.itemsize
    offset += reader.metadata_type.fields[field][1]
    if member:
        offset += reader.metadata_type[field].fields[member][1]
    return offset


def entry_of(reader, ptr):
    """The index of the allocation-table entry at pointer ``ptr``."""
    return int(np.flatnonzero(reader.alloc_table['ptr'] == ptr)[0])


def test_the_good_file_verifies(good_file):
    summary = verify(good_file)
    assert summary['num_samples'] == 20
    reader = Reader(good_file)
    (member, ptrs, sizes), = reader.extents('blob')
    assert member == 'ptr' and sizes.tolist() == [k + 3 for k in range(20)]
    assert bytes(reader.stored_bytes(5, 'blob')) == bytes([5]) * 8


# ------------------------------------------------------------ checked when the file is opened

@pytest.mark.parametrize('page_size,problem', [
    (4096, 'outside the format'), (1, 'outside the format'), (1 << 20, 'outside the format'),
    (3 << 20, 'not a power of two'), (0, 'not a power of two')])
def test_a_page_size_outside_the_format_is_refused(good_file, tmp_path, page_size, problem):
    path = damaged(good_file, tmp_path, [(4, page_size.to_bytes(4, 'little'))])
    with pytest.raises(FormatError, match=f"page_size {page_size} is {problem}"):
        Reader(path)


def test_an_array_element_larger_than_a_page_is_refused(good_file, tmp_path):
    shape_at = 24 + 1041 * 2 + 17          # field 2 ('x'): its shape, 32 u8, first in its arguments
    path = damaged(good_file, tmp_path, [(shape_at, u64(1 << 40))])
    with pytest.raises(FormatError, match="field 'x'.*more than a page"):
        Reader(path)


def test_a_sample_count_past_the_file_is_refused(good_file, tmp_path):
    path = damaged(good_file, tmp_path, [(8, u64(1 << 40))])
    with pytest.raises(FormatError, match='truncated: the metadata of 1099511627776 samples'):
        Reader(path)


def test_allocations_of_samples_the_file_does_not_have_are_refused(good_file, tmp_path):
    reader = Reader(good_file)
    table = reader.alloc_table_ptr
    path = damaged(good_file, tmp_path, [(table, u64(1000))])          # entry 0's sample id
    damaged_reader = Reader(path)                                       # opening reads no table
    with pytest.raises(FormatError, match='data of sample 1000, but the header says the file has 20 samples'):
        damaged_reader[0]
    with pytest.raises(FormatError, match='sample 1000'):
        verify(path)


# ------------------------------------------------------------ checked for each pointer

@pytest.mark.parametrize('field,member,value,problem', [
    ('blob', 'ptr', 'header', 'outside the data region'),
    ('blob', 'ptr', 'metadata', 'outside the data region'),
    ('blob', 'ptr', 'table', 'outside the data region'),
    ('blob', 'ptr', 'next sample', 'the allocation of another sample'),
    ('blob', 'ptr', 'inside', 'is not an allocation'),
    ('blob', 'size', 'size+1', 'holds 13 bytes, its metadata says 14'),
    ('doc', 'size', 'size-1', 'its metadata says'),
    ('x', '', 'next sample', 'the allocation of another sample'),
    ('image', 'data_ptr', 1 << 62, 'outside the data region'),
])
def test_a_damaged_pointer_or_size_names_file_field_and_sample(good_file, tmp_path, field, member, value, problem):
    reader = Reader(good_file)
    sample = 10
    column = reader.metadata[field]
    pointers = column if field == 'x' else column['data_ptr' if field == 'image' else 'ptr']
    if value == 'header':
        value = 8
    elif value == 'metadata':
        value = reader.metadata_start + 3
    elif value == 'table':
        value = reader.alloc_table_ptr
    elif value == 'next sample':
        value = int(pointers[sample + 1])
    elif value == 'inside':
        value = int(pointers[sample]) + 1
    elif value == 'size+1':
        value = int(column['size'][sample]) + 1
    elif value == 'size-1':
        value = int(column['size'][sample]) - 1
    path = damaged(good_file, tmp_path, [(member_offset(reader, sample, field, member), u64(value))])
    damaged_reader = Reader(path)
    assert damaged_reader[sample - 1][1] == sample - 1                    # the others still read
    with pytest.raises(FormatError, match=f"damaged.beton.*sample {sample}, field '{field}'.*{problem}"):
        damaged_reader[sample]
    problems = []
    damaged_reader.extents(field, problems=problems)
    assert [s for s, _ in problems] == [sample] and problem in problems[0][1]
    with pytest.raises(FormatError, match=f"sample {sample}, field '{field}'.*{problem}"):
        verify(path)


@pytest.mark.parametrize('how,problem,verify_problem', [
    ('crossing', 'runs past the end of its page', 'crosses a page boundary|runs past the data region'),
    ('wrapping', 'runs past the end of its page', 'more than a page'),
])
def test_an_allocation_crossing_its_page_or_wrapping_around_is_refused(good_file, tmp_path, how, problem,
                                                                       verify_problem):
    reader = Reader(good_file)
    ptr = int(reader.metadata['blob']['ptr'][4])
    at = reader.alloc_table_ptr + 24 * entry_of(reader, ptr)
    size = PAGE - ptr % PAGE + 1 if how == 'crossing' else (1 << 64) - ptr + 8   # ptr + size wraps to 8
    path = damaged(good_file, tmp_path, [(at + 16, u64(size))])
    with pytest.raises(FormatError, match=f"sample 4, field 'blob'.*{problem}"):
        Reader(path)[4]
    with pytest.raises(FormatError, match=verify_problem):
        verify(path, decode=False)


def test_a_raw_image_whose_size_was_altered_is_refused(tmp_path):
    rng = np.random.default_rng(1)
    samples = [(photo_like_image(rng, 24, 32)[:, :, :1],) for _ in range(6)]
    path = tmp_path / 'gray.beton'
    write_dataset(path, {'image': ImageField(write_mode='raw', channels=1)}, samples, page_size=PAGE)
    reader = Reader(path)
    bad = damaged(path, tmp_path, [(member_offset(reader, 2, 'image', 'width'), (33).to_bytes(2, 'little'))])
    with pytest.raises(FormatError, match=r"sample 2, field 'image'.*holds 768 bytes, its metadata says 792"):
        Reader(bad)[2]
    with pytest.raises(FormatError, match='sample 2'):
        verify(bad)


def test_a_jpeg_with_the_wrong_number_of_components_is_refused(tmp_path):
    rng = np.random.default_rng(2)
    gray = tmp_path / 'gray.beton'
    write_dataset(gray, {'image': ImageField(write_mode='jpg', channels=1)},
                  [(photo_like_image(rng, 24, 32)[:, :, :1],) for _ in range(4)], page_size=PAGE)
    # the descriptor says RGB (type 2): the stored 1-component JPEGs do not match it
    path = damaged(gray, tmp_path, [(24, bytes([2])), (24 + 17, bytes(1))])
    with pytest.raises(FormatError, match=r"sample 0, field 'image'.*stored JPEG has 1 channel\(s\), the field has 3"):
        Reader(path)[0]
    with pytest.raises(FormatError, match="sample 0, field 'image'"):
        verify(path)


def test_verify_decodes_jpegs_strictly_naming_the_sample(good_file, tmp_path):
    """JPEG data that libjpeg decodes with a 'Corrupt JPEG data' warning (an unexpected
    restart marker in the middle of the scan) fails verification, naming the sample."""
    reader = Reader(good_file)
    data = bytes(reader.stored_bytes(7, 'image'))
    ptr = int(reader.metadata['image']['data_ptr'][7])
    sos = data.index(b'\xff\xda')
    scan = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], 'big')
    middle = (scan + len(data) - 2) // 2
    path = damaged(good_file, tmp_path, [(ptr + middle, b'\xff\xd3')])
    assert Reader(path)[7][0].shape == (20, 30, 3)          # lenient decoding gives an image...
    with pytest.raises(FormatError, match=r"sample 7, field 'image': its JPEG data is corrupt \(Corrupt JPEG"):
        verify(path)                                        # ...verify says it is corrupt


def test_verify_lists_every_problem(good_file, tmp_path):
    reader = Reader(good_file)
    patches = [(member_offset(reader, s, 'blob', 'size'), u64(int(reader.metadata['blob']['size'][s]) + 1))
               for s in (2, 9, 15)]
    with pytest.raises(FormatError, match=r'3 problem\(s\)') as info:
        verify(damaged(good_file, tmp_path, patches))
    for s in (2, 9, 15):
        assert f"sample {s}, field 'blob'" in str(info.value)
