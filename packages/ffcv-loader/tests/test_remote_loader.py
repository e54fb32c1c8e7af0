"""The Loader over a file on object storage: a real S3-compatible server (moto, server mode)
on 127.0.0.1 through s3fs, with a proxy (also on 127.0.0.1) that counts the requests or fails
some. The batches are those of the local copy, byte for byte."""
import collections
import hashlib
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from ffcv_format import Reader
from ffcv_loader import Loader, OrderOption
from ffcv_loader.memory import MappedPageCacheManager, ProcessCacheManager

pytest.importorskip('s3fs')
pytest.importorskip('moto')

from ffcv_format.remote import RemoteReadError, RetryPolicy  # noqa: E402
from ffcv_format.remote_testing import (NO_BACKEND_RETRIES, OFFLINE_AWS_ENVIRONMENT, mixed_dataset,  # noqa: E402
                                        offline_aws_environment, recording_proxy, s3_server,
                                        storage_options_for)

PAGE = 1 << 21
URL = 's3://data/train.beton'
QUICK = RetryPolicy(attempts=4, first_delay=0.01, max_delay=0.05)
@pytest.fixture(scope='module', autouse=True)
def no_cloud():
    with offline_aws_environment():
        yield


@pytest.fixture(scope='module')
def local_file(tmp_path_factory):
    """600 samples: a JPEG image (64x80), a 48x48 float32 array, an int; data on 4 pages."""
    path = mixed_dataset(tmp_path_factory.mktemp('remote-loader') / 'train.beton', 600, (64, 80), (48, 48), PAGE, 11)
    assert len(np.unique(Reader(path).sample_pages(['image', 'values']))) >= 4
    return path


@pytest.fixture(scope='module')
def s3(local_file):
    with s3_server() as server:
        server.upload(local_file, URL)
        yield server


def epochs(loader, count=1):
    """Per epoch, the batches' bytes (every output)."""
    return [[b''.join(x.numpy().tobytes() for x in batch) for batch in loader] for _ in range(count)]


def loader_of(fname, order, **kwargs):
    return Loader(fname, batch_size=64, num_workers=2, order=order, seed=5, drop_last=False, **kwargs)


MODES = {
    # (os_cache, cache directory?) -> the memory manager it gives
    'process-cache': (False, False, ProcessCacheManager),
    'os-cache-without-cache-dir': (True, False, ProcessCacheManager),
    'os-cache-with-cache-dir': (True, True, MappedPageCacheManager),
    'process-cache-with-cache-dir': (False, True, ProcessCacheManager),
}


@pytest.mark.parametrize('mode', list(MODES))
@pytest.mark.parametrize('order', list(OrderOption), ids=lambda o: o.name)
def test_batches_from_the_bucket_are_those_of_the_local_copy(local_file, s3, tmp_path, order, mode):
    os_cache, cached, manager = MODES[mode]
    expected = epochs(loader_of(local_file, order, os_cache=os_cache), 2)
    remote = loader_of(URL, order, os_cache=os_cache, storage_options=s3.storage_options,
                       cache_dir=tmp_path / 'cache' if cached else None)
    assert type(remote.memory_manager) is manager
    got = epochs(remote, 2)
    assert got == expected
    assert len(got[0]) == 10 and got[0] != got[1] or order is OrderOption.SEQUENTIAL


def test_quasi_random_reads_each_page_once_per_epoch(local_file, s3):
    """With the process cache holding the file, an epoch fetches every data page once."""
    reader = Reader(local_file)
    data_pages = np.unique(reader.sample_pages(['image', 'values']))
    with recording_proxy(s3.endpoint_url) as proxy:
        loader = loader_of(URL, OrderOption.QUASI_RANDOM, os_cache=False,
                           storage_options=storage_options_for(proxy.endpoint_url))
        proxy.reset_log()
        epochs(loader)
        assert sorted(proxy.ranged_gets(206)) == sorted(_page_ranges(reader, data_pages))


def _page_ranges(reader, pages):
    return [f"bytes={p * reader.page_size}-{min((p + 1) * reader.page_size, reader.file_size) - 1}"
            for p in pages]


_SHARING_PROCESS = textwrap.dedent("""
    import hashlib, os, sys, time
    from ffcv_format.remote_testing import storage_options_for
    from ffcv_loader import Loader, OrderOption
    url, endpoint, cache_dir, os_cache, me, other = sys.argv[1:]
    open(me, 'w').close()
    while not os.path.exists(other):     # both open the file at the same moment
        time.sleep(0.005)
    loader = Loader(url, batch_size=64, num_workers=2, order=OrderOption.QUASI_RANDOM, seed=5,
                    drop_last=False, os_cache=os_cache == '1', cache_dir=cache_dir,
                    storage_options=storage_options_for(endpoint))
    digest = hashlib.sha256()
    for batch in loader:
        digest.update(b''.join(x.numpy().tobytes() for x in batch))
    print(digest.hexdigest())
""")


def test_two_processes_sharing_a_cache_directory_download_each_page_once(local_file, s3, tmp_path):
    reader = Reader(local_file)
    local_epoch, = epochs(loader_of(local_file, OrderOption.QUASI_RANDOM))
    expected = hashlib.sha256(b''.join(local_epoch)).hexdigest()
    script = tmp_path / 'sharing.py'
    script.write_text(_SHARING_PROCESS)
    env = dict(os.environ, **OFFLINE_AWS_ENVIRONMENT)
    # answers 50 ms late: the two processes overlap, and one waits on the other's page locks
    with recording_proxy(s3.endpoint_url, delay=0.05) as proxy:
        ready = [tmp_path / 'ready-0', tmp_path / 'ready-1']
        processes = [subprocess.Popen([sys.executable, str(script), URL, proxy.endpoint_url,
                                       str(tmp_path / 'cache'), os_cache, str(ready[k]), str(ready[1 - k])],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                     for k, os_cache in enumerate(('1', '0'))]
        outputs = [p.communicate(timeout=180) for p in processes]
        for p, (out, err) in zip(processes, outputs):
            assert p.returncode == 0, err
        assert [out.strip() for out, _ in outputs] == [expected, expected]
        every_page = _page_ranges(reader, range(-(-reader.file_size // reader.page_size)))
        fetched = collections.Counter(proxy.ranged_gets(206))
    # each opened the file with one read of its first 64 KiB; every page was downloaded once
    assert fetched == collections.Counter({'bytes=0-65535': 2, **{r: 1 for r in every_page}})


def test_a_server_failing_requests_is_survived(local_file, s3, tmp_path):
    """1 request in 4 answered 503 or reset (the backend's own retries off): same batches."""
    for os_cache, cache_dir in ((False, None), (True, tmp_path / 'cache')):
        expected = epochs(loader_of(local_file, OrderOption.RANDOM, os_cache=os_cache))
        with recording_proxy(s3.endpoint_url, fail_every=4) as proxy:
            loader = loader_of(URL, OrderOption.RANDOM, os_cache=os_cache, cache_dir=cache_dir, retry=QUICK,
                               storage_options=storage_options_for(proxy.endpoint_url, **NO_BACKEND_RETRIES))
            assert epochs(loader) == expected
            assert proxy.injected_failures >= 2
            assert {r.outcome for r in proxy.requests} >= {503, 'reset', 206}


def test_errors_that_go_on_stop_the_epoch_naming_url_range_and_attempts(s3):
    with recording_proxy(s3.endpoint_url) as proxy:
        loader = loader_of(URL, OrderOption.SEQUENTIAL, os_cache=False, retry=QUICK,
                           storage_options=storage_options_for(proxy.endpoint_url, **NO_BACKEND_RETRIES))
        proxy.fail_every, proxy.failures = 1, ('503',)
        with pytest.raises(RemoteReadError) as error:
            epochs(loader)
    assert str(error.value).startswith(f"{URL}: reading bytes [{PAGE}, {2 * PAGE}) failed 4 times")
    assert any('batch 0: reading its pages' in note for note in getattr(error.value, '__notes__', []))


def test_a_missing_object_is_one_clear_error_when_the_loader_is_made(s3):
    with recording_proxy(s3.endpoint_url) as proxy:
        began = time.monotonic()
        with pytest.raises(FileNotFoundError, match=r"s3://data/missing.beton: no such file"):
            Loader('s3://data/missing.beton', batch_size=8,
                   storage_options=storage_options_for(proxy.endpoint_url))
        assert time.monotonic() - began < 5
        asked = [(r.method, r.path) for r in proxy.requests]
        assert len(asked) == len(set(asked))       # nothing asked twice: no retries


def test_denied_access_is_one_clear_error_when_the_loader_is_made(s3):
    with s3.reads_denied() as options:
        began = time.monotonic()
        with pytest.raises(PermissionError, match=r"s3://data/train.beton: access denied"):
            Loader(URL, batch_size=8, storage_options=options)
        assert time.monotonic() - began < 5
