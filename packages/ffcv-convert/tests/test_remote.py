"""Sources on an S3-compatible server (moto, server mode, through s3fs) and an HTTP server.

Both servers run on 127.0.0.1, started by the tests.
"""
import os
from pathlib import Path

import pytest
from ffcv_convert import convert, open_source
from ffcv_convert.testing import (
    http_server,
    s3_server,
    stored_bytes,
    truncate_file,
    upload_folder,
    write_image_folder,
)
from ffcv_format import Reader

pytest.importorskip('s3fs')
pytest.importorskip('moto')


@pytest.fixture(scope='module')
def local(tmp_path_factory):
    root = tmp_path_factory.mktemp('remote-src')
    entries = write_image_folder(root / 'train', 16, classes=3, seed=7)
    with open(root / 'train.csv', 'w') as f:
        f.write('path,label\n')
        for path, label in entries:
            f.write(f"{os.path.relpath(path, root)},{label}\n")
    import webdataset as wds
    os.makedirs(root / 'shards')
    for shard in range(2):
        with wds.TarWriter(str(root / 'shards' / f'part-{shard}.tar')) as sink:
            for k in range(shard * 8, shard * 8 + 8):
                sink.write({'__key__': f's{k:03d}', 'jpg': Path(entries[k][0]).read_bytes(),
                            'cls': entries[k][1]})
    return root, entries


@pytest.fixture(scope='module')
def s3(local):
    root, _ = local
    with s3_server() as options:
        upload_folder(root, 's3://data/set', options)
        yield options


def _check(dst, entries):
    reader = Reader(dst)
    assert reader.num_samples == len(entries)
    for k, (path, label) in enumerate(entries):
        assert stored_bytes(reader, k) == Path(path).read_bytes()
        assert reader[k][1] == label


def test_s3_image_folder(local, s3, tmp_path):
    _, entries = local
    result = convert('s3://data/set/train', tmp_path / 'f.beton', storage_options=s3,
                     image_options={'keep_jpeg': True}, part_size=5, progress=False)
    assert result.num_parts == 4
    _check(tmp_path / 'f.beton', entries)
    assert open_source('s3://data/set/train', storage_options=s3).remote


def test_s3_manifest(local, s3, tmp_path):
    _, entries = local
    convert('s3://data/set/train.csv', tmp_path / 'm.beton', storage_options=s3,
            image_options={'keep_jpeg': True}, progress=False)
    _check(tmp_path / 'm.beton', entries)


def test_s3_webdataset_shards(local, s3, tmp_path):
    _, entries = local
    result = convert('s3://data/set/shards/part-{0..1}.tar', tmp_path / 'w.beton', storage_options=s3,
                     image_options={'keep_jpeg': True}, progress=False)
    assert result.num_parts == 2
    _check(tmp_path / 'w.beton', entries)


def test_s3_missing_object_is_reported_with_its_url(local, s3, tmp_path):
    import fsspec
    root, entries = local
    fs, _ = fsspec.core.url_to_fs('s3://data', **s3)
    fs.copy('s3://data/set/train', 's3://data/copy/train', recursive=True)
    fs.invalidate_cache()
    victim = 'data/copy/' + os.path.relpath(entries[4][0], root)
    source = open_source('s3://data/copy/train', storage_options=s3)
    len(source)  # listed while the object still exists
    fs.rm(victim)
    result = convert(source, tmp_path / 'x.beton', on_error='skip', progress=False)
    assert result.skipped == [(f's3://{victim}', 'file not found')]
    assert result.num_samples == len(entries) - 1


def test_http_image_folder_and_manifest(local, tmp_path):
    root, entries = local
    with http_server(root) as url:
        result = convert(f'{url}/train/', tmp_path / 'h.beton', image_options={'keep_jpeg': True},
                         progress=False)
        assert result.num_samples == len(entries)
        _check(tmp_path / 'h.beton', entries)
        convert(f'{url}/train.csv', tmp_path / 'hm.beton', image_options={'keep_jpeg': True}, progress=False)
        _check(tmp_path / 'hm.beton', entries)
        convert(f'{url}/shards/part-{{0..1}}.tar', tmp_path / 'hw.beton', image_options={'keep_jpeg': True},
                progress=False)
        _check(tmp_path / 'hw.beton', entries)


def test_http_corrupt_file_stops_with_its_url(local, tmp_path):
    import shutil
    root, entries = local
    copy = tmp_path / 'served'
    shutil.copytree(root / 'train', copy / 'train')
    bad = copy / os.path.relpath(entries[2][0], root)
    truncate_file(bad, 0.3)
    with http_server(copy) as url:
        from ffcv_convert import ConversionError
        with pytest.raises(ConversionError, match=rf"cannot read {url}/train/.*{bad.name}: truncated JPEG"):
            convert(f'{url}/train', tmp_path / 'x.beton', progress=False)
