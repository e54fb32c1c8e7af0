"""Sources on an S3-compatible server (moto, server mode, through s3fs) and an HTTP server.

Both servers run on 127.0.0.1, started by the tests.
"""
import contextlib
import http.client
import http.server
import os
import threading
import urllib.parse
from pathlib import Path

import pytest
from ffcv_convert import ConversionError, convert, open_source
from ffcv_convert.testing import (
    encode_jpeg_file,
    http_server,
    s3_server,
    stored_bytes,
    truncate_file,
    upload_folder,
    write_image_folder,
)
from ffcv_format import Reader
from ffcv_format.testing import photo_like_image

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
        with pytest.raises(ConversionError, match=rf"cannot read {url}/train/.*{bad.name}: truncated JPEG"):
            convert(f'{url}/train', tmp_path / 'x.beton', progress=False)


# ------------------------------------------------------------ folders whose listing fails
# Real listing failures, as servers give them: over HTTP, a server that answers the listing
# page of one class folder with 403 Forbidden and of a subfolder with 404 (what Python's
# http.server answers for a folder it may not list); over S3, a proxy in front of the moto
# server answering AccessDenied to listings of two prefixes (what a bucket policy denying
# s3:ListBucket for an s3:prefix does). fsspec's own find() leaves such folders out.

@contextlib.contextmanager
def _serve(handler):
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope='module')
def tree_with_a_subfolder(tmp_path_factory):
    """``train/class_{a,b,c}`` (4 images each) and ``train/class_c/sub`` (2 images): the
    entries ``(path, label)`` of class_a and of class_c outside ``sub``, in order."""
    import numpy as np
    root = tmp_path_factory.mktemp('denied')
    entries = write_image_folder(root / 'train', 12, classes=3, seed=11)
    rng = np.random.default_rng(12)
    os.makedirs(root / 'train' / 'class_c' / 'sub')
    for k in range(2):
        (root / 'train' / 'class_c' / 'sub' / f'deep_{k}.jpg').write_bytes(
            encode_jpeg_file(photo_like_image(rng, 30, 40)))
    kept = [(path, label) for path, label in entries if label != 1]
    assert [label for _, label in kept] == [0] * 4 + [2] * 4
    return root, kept


def _check_kept(dst, kept):
    reader = Reader(dst)
    # class_c keeps label 2 although class_b (label 1) could not be listed
    assert [int(x) for x in reader.metadata['label']] == [label for _, label in kept] == [0] * 4 + [2] * 4
    for k, (path, _) in enumerate(kept):
        assert stored_bytes(reader, k) == Path(path).read_bytes()


def _report_lines(result):
    return [line for line in Path(result.skipped_report).read_text().splitlines() if not line.startswith('#')]


def test_http_folders_whose_listing_fails_stop_or_keep_their_labels(tree_with_a_subfolder, tmp_path):
    root, kept = tree_with_a_subfolder
    failing = {'/train/class_b': (403, 'Forbidden'),
               '/train/class_c/sub': (404, 'No permission to list directory')}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

        def do_GET(self):
            status = failing.get(urllib.parse.urlsplit(self.path).path.rstrip('/'))
            if status:
                return self.send_error(*status)
            return super().do_GET()

    with _serve(Handler) as url:
        dst = tmp_path / 'h.beton'
        with pytest.raises(ConversionError) as error:
            convert(f'{url}/train/', dst, progress=False)
        assert str(error.value).startswith(
            f"cannot read the folder {url}/train/class_b: folder cannot be listed (ClientResponseError: 403, "
            f"message='Forbidden'")
        assert f"(and 1 more: {url}/train/class_c/sub)" in str(error.value)
        assert not dst.exists() and not os.path.exists(str(dst) + '.parts')

        result = convert(f'{url}/train/', dst, on_error='skip', image_options={'keep_jpeg': True},
                         progress=False)
    _check_kept(dst, kept)
    assert [w for w, _ in result.skipped_folders] == [f'{url}/train/class_b', f'{url}/train/class_c/sub']
    reasons = [r for _, r in result.skipped_folders]
    assert reasons[0].endswith("(class 'class_b', label 1)") and '403' in reasons[0]
    assert reasons[1] == f"folder cannot be listed (FileNotFoundError: {url}/train/class_c/sub/) " \
                         "(class 'class_c', label 2)"
    assert _report_lines(result) == [f"{w}\t{r}" for w, r in result.skipped_folders]


class _DenyingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards S3 requests to ``upstream``; listings of a ``denied`` prefix get AccessDenied."""

    protocol_version = 'HTTP/1.1'
    upstream = None
    denied = ()

    def log_message(self, *args):
        pass

    def _forward(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        prefix = query.get('prefix', [''])[0]
        if self.command == 'GET' and any(prefix.startswith(d) for d in self.denied):
            data = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                    b'<Message>Access Denied</Message><RequestId>ffcv-test</RequestId></Error>')
            self.send_response_only(403)
            self.send_header('Content-Type', 'application/xml')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ('connection', 'keep-alive')}
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            self.send_response_only(response.status)
            for key, value in response.getheaders():
                if key.lower() in ('connection', 'keep-alive', 'transfer-encoding') or \
                        (key.lower() == 'content-length' and self.command != 'HEAD'):
                    continue
                self.send_header(key, value)
            if self.command != 'HEAD':
                self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(data)
        finally:
            connection.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward


def test_s3_folders_whose_listing_is_denied_stop_or_keep_their_labels(tree_with_a_subfolder, s3, tmp_path):
    root, kept = tree_with_a_subfolder
    upload_folder(root / 'train', 's3://data/denied/train', s3)
    upstream = urllib.parse.urlsplit(s3['endpoint_url'])
    denied = ('denied/train/class_b', 'denied/train/class_c/sub')
    handler = type('Proxy', (_DenyingProxy,),
                   {'upstream': (upstream.hostname, upstream.port), 'denied': denied})
    with _serve(handler) as proxy:
        options = dict(s3, endpoint_url=proxy)
        dst = tmp_path / 's.beton'
        expected = (r"^cannot read the folder s3://data/denied/train/class_b: folder cannot be listed "
                    r"\(PermissionError: Access Denied\) \(class 'class_b', label 1\) \(and 1 more: "
                    r"s3://data/denied/train/class_c/sub\)\. .*--skip-bad")
        with pytest.raises(ConversionError, match=expected):
            convert('s3://data/denied/train', dst, storage_options=options, progress=False)
        assert not dst.exists() and not os.path.exists(str(dst) + '.parts')
        result = convert('s3://data/denied/train', dst, storage_options=options, on_error='skip',
                         image_options={'keep_jpeg': True}, part_size=3, progress=False)
    _check_kept(dst, kept)
    assert [w for w, _ in result.skipped_folders] == ['s3://data/denied/train/class_b',
                                                      's3://data/denied/train/class_c/sub']
    assert all('PermissionError' in r for _, r in result.skipped_folders)
    assert result.skipped_folders[1][1].endswith("(class 'class_c', label 2)")
    assert _report_lines(result) == [f"{w}\t{r}" for w, r in result.skipped_folders]
    # without the proxy (nothing denied) all 14 images are there, sub included, with the same labels
    full = convert('s3://data/denied/train', tmp_path / 'full.beton', storage_options=s3, progress=False)
    assert full.skipped_folders == [] and full.num_samples == 14
    assert [int(x) for x in Reader(tmp_path / 'full.beton').metadata['label']] == [0] * 4 + [1] * 4 + [2] * 6
