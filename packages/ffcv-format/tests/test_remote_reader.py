"""Reader over a file on object storage: a real S3-compatible server (moto, server mode) on
127.0.0.1 reached through s3fs, with and without a cache directory; damaged files refused as
local ones are; missing objects, denied access and transient errors."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ffcv_format import FormatError, Reader
from ffcv_format.mutations import mutations, select

pytest.importorskip('s3fs')
pytest.importorskip('moto')

from ffcv_format.remote import RemoteReadError, RetryPolicy  # noqa: E402
from ffcv_format.remote_testing import (NO_BACKEND_RETRIES, mixed_dataset, offline_aws_environment,  # noqa: E402
                                        recording_proxy, s3_server, storage_options_for)

PAGE = 1 << 21
URL = 's3://data/train.beton'
QUICK = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.05)


@pytest.fixture(scope='module', autouse=True)
def no_cloud():
    with offline_aws_environment():
        yield


@pytest.fixture(scope='module')
def local_file(tmp_path_factory):
    """200 samples: a JPEG image, a float32 array, an int; data on two pages."""
    return mixed_dataset(tmp_path_factory.mktemp('remote-reader') / 'train.beton', 200, (40, 56), (24, 24), PAGE, 4)


@pytest.fixture(scope='module')
def s3(local_file):
    with s3_server() as server:
        server.upload(local_file, URL)
        yield server


def same_values(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize('cached', [False, True], ids=['no-cache', 'cache-dir'])
def test_a_remote_file_reads_as_its_local_copy(local_file, s3, tmp_path, cached):
    local = Reader(local_file)
    remote = Reader(URL, storage_options=s3.storage_options, cache_dir=tmp_path / 'cache' if cached else None)
    assert remote.file_name == URL and remote.file_size == local.file_size
    assert remote.header.tobytes() == local.header.tobytes()
    assert remote.field_names == local.field_names and remote.data_region == local.data_region
    assert remote.metadata.tobytes() == local.metadata.tobytes()
    assert remote.alloc_table.tobytes() == local.alloc_table.tobytes()
    assert not remote.metadata.flags.writeable
    samples = range(200) if cached else range(0, 200, 9)
    for i in samples:
        assert same_values(remote[i], local[i]), i
        assert bytes(remote.stored_bytes(i, 'image')) == bytes(local.stored_bytes(i, 'image'))
    (_, ptrs, sizes), = local.extents('values')
    assert bytes(remote.read(int(ptrs[7]), int(sizes[7]))) == bytes(local.read(int(ptrs[7]), int(sizes[7])))
    with pytest.raises(FormatError, match=r"s3://data/train.beton.*outside the data region"):
        remote.read(3, 10)
    if cached:
        folder, = os.listdir(tmp_path / 'cache')
        copy = (tmp_path / 'cache' / folder / 'data').read_bytes()
        present = np.frombuffer((tmp_path / 'cache' / folder / 'pages').read_bytes(), dtype=np.uint8)
        whole = local_file.read_bytes()
        assert present.tolist() == [1] * len(present)          # every page was needed
        assert copy == whole
        assert json.loads((tmp_path / 'cache' / folder / 'source.json').read_text())['url'] == URL


def test_a_remote_file_has_no_buffer_nor_storage_state(s3):
    remote = Reader(URL, storage_options=s3.storage_options)
    with pytest.raises(AttributeError, match=r"s3://data/train.beton.*not memory-mapped.*reader.read"):
        remote.buffer
    with pytest.raises(ValueError, match=r"s3://data/train.beton.*remote file.*memory managers"):
        remote.storage_state()


def test_the_header_and_tables_take_a_few_requests(s3, local_file):
    with recording_proxy(s3.endpoint_url) as proxy:
        Reader(URL, storage_options=storage_options_for(proxy.endpoint_url))
        local = Reader(local_file)
        table = f"bytes={local.alloc_table_ptr}-{local.file_size - 1}"
        metadata = f"bytes={local.metadata_start}-{local.metadata_end - 1}"
        assert [(r.method, r.range) for r in proxy.requests] == [
            ('HEAD', None), ('GET', 'bytes=0-65535'), ('GET', metadata), ('GET', table)]


# ------------------------------------------------------------ damaged files

def _outcome(call):
    try:
        call()
    except FormatError as e:
        return 'FormatError', str(e)
    return 'ok', None


def _read_all(reader):
    """Every pointer of every field checked (``extents``), the first and last samples decoded."""
    reader.allocations()
    for name in reader.field_names:
        reader.extents(name)
    reader[0], reader[reader.num_samples - 1]


def test_damaged_remote_files_are_refused_as_their_local_copies(local_file, s3, tmp_path):
    """Structure mutations of every family (header, descriptors, metadata, allocation table,
    truncations): the remote Reader gives the local one's outcome, word for word but the name."""
    structural = [m for m in mutations(local_file, seed=1) if m.kind == 'structure']
    chosen = [m for _, m in select({'base': structural}, 40, seed=2)]
    assert len({m.group for m in chosen}) >= 8
    data = local_file.read_bytes()
    refused = 0
    for k, mutation in enumerate(chosen):
        path = tmp_path / f'm{k}.beton'
        path.write_bytes(mutation.apply(data))
        url = f's3://data/mutants/m{k}.beton'
        s3.upload(path, url)
        local_opened, remote_opened = [], []
        local = _outcome(lambda: local_opened.append(Reader(path)))
        remote = _outcome(lambda: remote_opened.append(Reader(url, storage_options=s3.storage_options)))
        if local[0] == 'ok' and remote[0] == 'ok':
            local = _outcome(lambda: _read_all(local_opened[0]))
            remote = _outcome(lambda: _read_all(remote_opened[0]))
        expected = (local[0], None if local[1] is None else local[1].replace(repr(str(path)), repr(url)))
        assert remote == expected, mutation.name
        refused += local[0] == 'FormatError'
    assert refused >= len(chosen) // 2


# ------------------------------------------------------------ errors of the store

def test_a_missing_object_is_one_clear_error(s3):
    with pytest.raises(FileNotFoundError, match=r"s3://data/nothing-here.beton: no such file"):
        Reader('s3://data/nothing-here.beton', storage_options=s3.storage_options)
    with pytest.raises(FileNotFoundError, match=r"s3://no-such-bucket/train.beton: no such file"):
        Reader('s3://no-such-bucket/train.beton', storage_options=s3.storage_options)


def test_denied_access_is_one_clear_error(s3):
    with s3.reads_denied() as reader_options:
        with pytest.raises(PermissionError, match=r"s3://data/train.beton: access denied"):
            Reader(URL, storage_options=reader_options)


def test_transient_errors_are_retried(local_file, s3):
    local = Reader(local_file)
    with recording_proxy(s3.endpoint_url, fail_every=2) as proxy:
        options = storage_options_for(proxy.endpoint_url, **NO_BACKEND_RETRIES)
        remote = Reader(URL, storage_options=options, retry=QUICK)
        assert remote.metadata.tobytes() == local.metadata.tobytes()
        assert remote.alloc_table.tobytes() == local.alloc_table.tobytes()
        for i in range(0, 200, 20):
            assert same_values(remote[i], local[i])
        assert proxy.injected_failures >= 5
        assert {r.outcome for r in proxy.requests} == {200, 206, 503, 'reset'}


def test_errors_that_go_on_are_reported_with_url_range_and_attempts(s3):
    with recording_proxy(s3.endpoint_url, fail_every=1, failures=('503',)) as proxy:
        options = storage_options_for(proxy.endpoint_url, **NO_BACKEND_RETRIES)
        with pytest.raises(RemoteReadError) as error:
            Reader(URL, storage_options=options, retry=QUICK)
        assert proxy.ranged_gets(503) == ['bytes=0-65535'] * 3
    message = str(error.value)
    assert message.startswith('s3://data/train.beton: reading bytes [0, 65536) failed 3 times')
    assert 'Service is unable to handle request' in message
    assert (error.value.url, error.value.start, error.value.end, error.value.attempts) == (URL, 0, 65536, 3)


# ------------------------------------------------------------ the optional dependency

def test_fsspec_is_imported_for_urls_only_and_a_missing_backend_names_its_extra(local_file):
    script = textwrap.dedent(f"""
        import sys
        sys.modules['s3fs'] = None          # as if the backend were not installed
        from ffcv_format import Reader
        Reader({str(local_file)!r})
        print('fsspec' in sys.modules)
        try:
            Reader('s3://data/train.beton')
        except ImportError as e:
            print(e)
    """)
    lines = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, check=True,
                           timeout=120).stdout.splitlines()
    assert lines[0] == 'False'
    assert lines[1].startswith("reading s3://data/train.beton needs the fsspec backend of its protocol")
    assert "pip install 'ffcv-loader[s3]' (or 'ffcv-format[s3]' for the Reader alone)" in lines[1]
