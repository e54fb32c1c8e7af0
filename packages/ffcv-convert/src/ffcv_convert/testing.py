"""Helpers for tests of ffcv_convert and of the packages built on it.

Real components only: JPEG files written by OpenCV, a local HTTP server, an
S3-compatible server (moto's server mode, ``pip install 'moto[server]'``), all on
127.0.0.1.
"""
import contextlib
import functools
import http.server
import os
import socket
import threading
import time

import cv2
import numpy as np
from ffcv_format.testing import photo_like_image

__all__ = ['write_image_folder', 'encode_jpeg_file', 'truncate_file', 'http_server', 's3_server',
           'upload_folder']


def encode_jpeg_file(image, quality=92):
    """JPEG bytes of an RGB (or grayscale) uint8 image, as a camera or PIL would write them."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def write_image_folder(root, count, classes=3, seed=0, sizes=(40, 90), extension='.jpg'):
    """Write ``root/<class>/<name>`` images; return ``[(path, label), ...]`` in ImageFolder order.

    Classes are ``class_a``, ``class_b``...; image sizes are drawn from ``sizes``.
    PNG files are written for ``extension='.png'``.
    """
    rng = np.random.default_rng(seed)
    entries = []
    for k in range(count):
        label = k % classes
        class_name = f"class_{chr(ord('a') + label)}"
        directory = os.path.join(root, class_name)
        os.makedirs(directory, exist_ok=True)
        h, w = (int(x) for x in rng.integers(sizes[0], sizes[1], size=2))
        image = photo_like_image(rng, h, w)
        path = os.path.join(directory, f"img_{k:05d}{extension}")
        if extension == '.png':
            ok, data = cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            data = data.tobytes()
        else:
            data = encode_jpeg_file(image)
        with open(path, 'wb') as f:
            f.write(data)
        entries.append((path, label))
    entries.sort(key=lambda e: (e[1], os.path.relpath(e[0], root)))
    return entries


def stored_bytes(reader, index, field='image'):
    """The bytes an image field stores for sample ``index`` (e.g. the JPEG file, kept as is)."""
    return bytes(reader.stored_bytes(index, field))


def truncate_file(path, keep=0.5):
    """Cut a file to ``keep`` of its length (a download that stopped half-way)."""
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:max(1, int(len(data) * keep))])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    delay = 0.0

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.delay:
            time.sleep(self.delay)
        return super().do_GET()


@contextlib.contextmanager
def http_server(directory, delay=0.0):
    """Serve ``directory`` on 127.0.0.1 (directory listings included); yields the base URL.

    ``delay`` seconds are added to every GET, like a distant server.
    """
    handler = type('Handler', (_QuietHandler,), {'delay': delay})
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                             functools.partial(handler, directory=os.fspath(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s3_server():
    """An S3-compatible server (moto in server mode) on 127.0.0.1.

    Yields the fsspec storage options that reach it through s3fs
    (``{'endpoint_url': ..., 'key': ..., 'secret': ...}``).
    """
    from moto.server import ThreadedMotoServer
    port = _free_port()
    server = ThreadedMotoServer(ip_address='127.0.0.1', port=port, verbose=False)
    server.start()
    try:
        yield {'endpoint_url': f"http://127.0.0.1:{port}", 'key': 'testing', 'secret': 'testing',
               'client_kwargs': {'region_name': 'eu-west-1'}, 'skip_instance_cache': True}
    finally:
        server.stop()


def upload_folder(local, url, storage_options):
    """Copy the local folder ``local`` to the fsspec URL ``url`` (e.g. ``s3://bucket/data``)."""
    import fsspec
    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    bucket = path.split('/', 1)[0]
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    for directory, _, files in os.walk(local):
        for name in files:
            source = os.path.join(directory, name)
            relative = os.path.relpath(source, local).replace(os.sep, '/')
            fs.put_file(source, f"{path.rstrip('/')}/{relative}")
    fs.invalidate_cache()


def count_tiles(png_path):
    """The number of tiles on a contact sheet, found from its pixels.

    Tiles are rectangles that are not background (white) separated by white gutters:
    rows of tiles are runs of rows holding a non-white pixel, and within each such
    band, tiles are runs of columns holding one.
    """
    image = cv2.imread(os.fspath(png_path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{png_path!r} is not a readable image")
    ink = (image != 255).any(axis=2)

    def runs(mask):
        edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))

    return sum(len(runs(ink[top:bottom].any(axis=0))) for top, bottom in runs(ink.any(axis=1)))
