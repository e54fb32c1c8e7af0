"""Helpers for tests of ffcv_convert and of the packages built on it.

Real components only: JPEG files written by OpenCV, a local HTTP server, an
S3-compatible server (moto's server mode, ``pip install 'moto[server]'``), a Ray cluster
(``pip install 'ffcv-convert[ray]'``), all on 127.0.0.1.
"""
import contextlib
import functools
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import cv2
import numpy as np
from ffcv_format.testing import photo_like_image

__all__ = ['write_image_folder', 'encode_jpeg_file', 'truncate_file', 'http_server', 's3_server',
           'upload_folder', 'ray_cluster']


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


def _processes_in_group(group):
    """The ids of the running processes of process group ``group`` (from /proc)."""
    found = []
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open(f'/proc/{name}/stat', 'rb') as f:
                    fields = f.read().rsplit(b')', 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != b'Z':  # pgrp; zombies are gone already
                found.append(int(name))
    return found


@contextlib.contextmanager
def ray_cluster(num_cpus=2, start_timeout=60):
    """A Ray cluster of one node with ``num_cpus`` CPUs on 127.0.0.1; yields its address.

    Started by ``ray start --head --block`` in a process group of its own, with its own
    temporary folder, so that stopping it ends exactly the processes it started (its GCS,
    raylet and workers), never another Ray on the machine (``ray stop`` would end them all).
    """
    ray_command = os.path.join(os.path.dirname(sys.executable), 'ray')
    # Ray's unix sockets live in the temporary folder: keep its path short
    temp_dir = tempfile.mkdtemp(prefix='ray-', dir='/tmp')
    port = _free_port()
    log_path = os.path.join(temp_dir, 'start.log')
    with open(log_path, 'wb') as log:
        process = subprocess.Popen(
            [ray_command, 'start', '--head', '--block', '--num-cpus', str(num_cpus), '--port', str(port),
             '--node-ip-address', '127.0.0.1', '--temp-dir', temp_dir, '--include-dashboard', 'false',
             '--disable-usage-stats'],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, RAY_USAGE_STATS_ENABLED='0'))
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            with open(log_path, 'rb') as f:
                if b'Ray runtime started' in f.read():
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                with open(log_path, 'rb') as f:
                    raise RuntimeError(f"ray start failed: {f.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while _processes_in_group(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _processes_in_group(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
        process.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


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
