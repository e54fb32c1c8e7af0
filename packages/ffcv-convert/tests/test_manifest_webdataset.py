"""CSV/Parquet manifests and WebDataset shards on local disk."""
import csv
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from ffcv_convert import ConversionError, Manifest, WebDataset, convert, expand_braces, open_source
from ffcv_convert.testing import stored_bytes, write_image_folder
from ffcv_format import Reader, verify


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp('images')
    return root, write_image_folder(root / 'files', 14, classes=4, seed=5)


def _write_csv(path, rows, columns):
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def test_csv_manifest_with_relative_paths_and_metadata_columns(images, tmp_path):
    root, entries = images
    rows = [{'file': os.path.relpath(path, root), 'class_id': label, 'weight': 0.5 + k,
             'caption': f'photo number {k}'} for k, (path, label) in enumerate(entries)]
    _write_csv(root / 'train.csv', rows, ['file', 'class_id', 'weight', 'caption'])
    dst = tmp_path / 'm.beton'
    result = convert(root / 'train.csv', dst, path_column='file', image_options={'keep_jpeg': True},
                     fields=['image', 'label=class_id:int', 'weight:float', 'caption:str'], progress=False)
    assert result.num_samples == len(entries)
    reader = Reader(dst)
    assert reader.field_names == ['image', 'label', 'weight', 'caption']
    for k, (path, label) in enumerate(entries):
        assert stored_bytes(reader, k) == Path(path).read_bytes()
        _, stored_label, weight, caption = reader[k]
        assert (stored_label, weight, caption) == (label, 0.5 + k, f'photo number {k}')
    verify(dst)


def test_parquet_manifest(images, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    root, entries = images
    table = pa.table({'path': [os.path.relpath(p, root) for p, _ in entries],
                      'label': [label for _, label in entries],
                      'meta': [json.dumps({'k': k}) for k in range(len(entries))]})
    pq.write_table(table, root / 'train.parquet')
    source = open_source(root / 'train.parquet')
    assert isinstance(source, Manifest)
    assert source.default_fields() == ['image=image:image', 'label=label:int']
    convert(source, tmp_path / 'p.beton', fields=['image', 'label', 'meta:json'],
            image_options={'write_mode': 'raw'}, progress=False)
    reader = Reader(tmp_path / 'p.beton')
    from ffcv_convert import decode_image
    for k, (path, label) in enumerate(entries):
        image, stored_label, meta = reader[k]
        np.testing.assert_array_equal(image, decode_image(Path(path).read_bytes()))
        assert stored_label == label and meta == {'k': k}


def test_manifest_errors_name_the_columns(images, tmp_path):
    root, entries = images
    _write_csv(root / 'bad.csv', [{'image_path': 'x.jpg', 'label': 1}], ['image_path', 'label'])
    with pytest.raises(ValueError, match=r"no column 'path' \(its columns: image_path, label\)"):
        convert(root / 'bad.csv', tmp_path / 'x.beton', progress=False)
    _write_csv(root / 'nan.csv', [{'path': os.path.relpath(entries[0][0], root), 'label': 'cat'}],
               ['path', 'label'])
    with pytest.raises(ConversionError, match=r"'label' = 'cat' does not convert"):
        convert(root / 'nan.csv', tmp_path / 'y.beton', progress=False)


def _write_shards(directory, entries, per_shard):
    import webdataset as wds
    os.makedirs(directory, exist_ok=True)
    names = []
    for shard, start in enumerate(range(0, len(entries), per_shard)):
        name = os.path.join(directory, f'train-{shard:03d}.tar')
        with wds.TarWriter(name) as sink:
            for k in range(start, min(start + per_shard, len(entries))):
                path, label = entries[k]
                sink.write({'__key__': f'sample{k:05d}', 'jpg': Path(path).read_bytes(), 'cls': label,
                            'json': {'index': k, 'source': os.path.basename(path)}})
        names.append(name)
    return names


def test_webdataset_shards_with_brace_pattern_and_key_choice(images, tmp_path):
    _, entries = images
    shards = _write_shards(tmp_path / 'shards', entries, per_shard=4)
    assert len(shards) == 4
    pattern = str(tmp_path / 'shards' / 'train-{000..003}.tar')
    source = open_source(pattern)
    assert isinstance(source, WebDataset) and source.urls == shards
    assert source.default_fields() == ['image=jpg:image', 'label=cls:int']
    dst = tmp_path / 'w.beton'
    result = convert(pattern, dst, fields='picture=jpg:image,label=cls:int,info=json',
                     image_options={'keep_jpeg': True}, progress=False)
    assert result.num_parts == 4 and result.num_samples == len(entries)
    reader = Reader(dst)
    assert reader.field_names == ['picture', 'label', 'info']
    for k, (path, label) in enumerate(entries):
        assert stored_bytes(reader, k, 'picture') == Path(path).read_bytes()
        _, stored_label, info = reader[k]
        assert stored_label == label and info == {'index': k, 'source': os.path.basename(path)}


def test_webdataset_sample_missing_a_key_is_a_bad_sample(images, tmp_path):
    _, entries = images
    name = tmp_path / 'odd.tar'
    with tarfile.open(name, 'w') as tar:
        for key, members in [('a', {'jpg': Path(entries[0][0]).read_bytes(), 'cls': b'1'}),
                             ('b', {'jpg': Path(entries[1][0]).read_bytes()}),     # no label
                             ('c', {'jpg': Path(entries[2][0]).read_bytes(), 'cls': b'2'})]:
            for extension, data in members.items():
                info = tarfile.TarInfo(f'{key}.{extension}')
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ConversionError, match=r"odd.tar:b: has no 'cls'"):
        convert(name, tmp_path / 'x.beton', fields=['image=jpg', 'label=cls'], progress=False)
    result = convert(name, tmp_path / 'y.beton', fields=['image=jpg', 'label=cls'], on_error='skip',
                     progress=False)
    assert result.num_samples == 2 and [w for w, _ in result.skipped] == [f'{name}:b']
    assert [Reader(tmp_path / 'y.beton')[i][1] for i in range(2)] == [1, 2]


def test_damaged_shard_stops_with_its_name(tmp_path):
    name = tmp_path / 'broken.tar'
    name.write_bytes(b'not a tar file' * 100)
    with pytest.raises((ValueError, ConversionError), match='broken.tar'):
        convert(name, tmp_path / 'x.beton', fields=['image=jpg'], progress=False)


def test_brace_expansion():
    assert expand_braces('s-{08..11}.tar') == ['s-08.tar', 's-09.tar', 's-10.tar', 's-11.tar']
    assert expand_braces('{a,b}/x-{1..2}') == ['a/x-1', 'a/x-2', 'b/x-1', 'b/x-2']
    assert expand_braces('plain.tar') == ['plain.tar']
    with pytest.raises(ValueError, match='cannot expand'):
        expand_braces('x-{abc}.tar')


def test_resumed_shards_keep_their_positions_and_so_their_proportion_choices(images, tmp_path):
    """write_mode='proportion' draws JPEG-or-raw per sample from its position in the source: a
    conversion resumed after some shards were done stores the same choices as one that was not."""
    _, entries = images
    options = dict(fields='image=jpg:image,label=cls:int', progress=False,
                   image_options={'write_mode': 'proportion', 'compress_probability': 0.5})
    shards = _write_shards(tmp_path / 'shards', entries, per_shard=3)
    assert len(shards) == 5
    reference = tmp_path / 'reference.beton'
    convert(WebDataset(shards), reference, **options)
    modes = [Reader(reference).metadata['image']['mode'][k] for k in range(len(entries))]
    assert 0 < sum(m == modes[0] for m in modes) < len(modes)     # both choices occur
    # a first run stops at a broken image of shard 3, after writing the parts of shards 0-2
    garbage = tmp_path / 'garbage.jpg'
    garbage.write_bytes(b'not a JPEG file ' * 64)
    broken = list(entries)
    broken[10] = (str(garbage), broken[10][1])
    _write_shards(tmp_path / 'shards', broken, per_shard=3)
    dst = tmp_path / 'resumed.beton'
    with pytest.raises(ConversionError, match='garbage|sample00010'):
        convert(WebDataset(shards), dst, **options)
    # the shard mended, the same command resumes
    _write_shards(tmp_path / 'shards', entries, per_shard=3)
    result = convert(WebDataset(shards), dst, **options)
    assert result.parts_reused == 3
    assert dst.read_bytes() == reference.read_bytes()
