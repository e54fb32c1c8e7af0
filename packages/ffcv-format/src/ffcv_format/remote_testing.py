"""An S3-compatible server on 127.0.0.1 for tests and benchmarks of remote files, and an HTTP
proxy in front of it that records the requests and fails a share of them.

The server is moto's, in server mode (``pip install 'moto[server]' s3fs``): a real S3 API
over HTTP, reached through s3fs as a bucket would be. Nothing listens on another address.
"""
import contextlib
import http.client
import http.server
import json
import logging
import os
import socket
import struct
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

__all__ = ['S3Server', 's3_server', 'RecordingProxy', 'recording_proxy']

#: the dummy credentials the test server takes
TEST_CREDENTIALS = {'key': 'testing', 'secret': 'testing'}


@dataclass
class S3Server:
    """A running S3-compatible server: ``endpoint_url`` and the fsspec ``storage_options``
    that reach it through s3fs (dummy credentials)."""
    endpoint_url: str

    @property
    def storage_options(self) -> dict:
        return storage_options_for(self.endpoint_url)

    def upload(self, local_path, url: str) -> None:
        """Copy the local file ``local_path`` to ``url`` (``s3://bucket/key``), making the bucket."""
        import fsspec
        fs, path = fsspec.core.url_to_fs(url, **self.storage_options)
        bucket = path.split('/', 1)[0]
        if not fs.exists(bucket):
            fs.mkdir(bucket)
        fs.put_file(os.fspath(local_path), path)
        fs.invalidate_cache()

    @contextlib.contextmanager
    def reads_denied(self) -> Iterator[dict]:
        """While the block runs, the server checks credentials and IAM policies (moto's
        ``reset-auth``); yields the storage options of a user who may list buckets but not
        read objects (as a bucket policy denying ``s3:GetObject`` would)."""
        import boto3
        iam = boto3.client('iam', endpoint_url=self.endpoint_url, region_name='eu-west-1',
                           aws_access_key_id=TEST_CREDENTIALS['key'],
                           aws_secret_access_key=TEST_CREDENTIALS['secret'])
        user = 'lister'
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName='list-only', PolicyDocument=json.dumps({
            'Version': '2012-10-17',
            'Statement': [{'Effect': 'Allow', 'Action': ['s3:ListBucket', 's3:ListAllMyBuckets'],
                           'Resource': '*'}]}))
        key = iam.create_access_key(UserName=user)['AccessKey']
        self._auth_after(0)
        try:
            yield dict(self.storage_options, key=key['AccessKeyId'], secret=key['SecretAccessKey'])
        finally:
            self._auth_after('inf')
            iam.delete_access_key(UserName=user, AccessKeyId=key['AccessKeyId'])
            iam.delete_user_policy(UserName=user, PolicyName='list-only')
            iam.delete_user(UserName=user)

    def _auth_after(self, count):
        """Check credentials from the ``count``-th request on (``'inf'``: never)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset-auth", data=str(count).encode(),
                                         method='POST', headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


#: environment for talking to the local server only: dummy credentials, and botocore never asks
#: an instance-metadata service or reads the user's AWS configuration
OFFLINE_AWS_ENVIRONMENT = dict(AWS_ACCESS_KEY_ID='testing', AWS_SECRET_ACCESS_KEY='testing',
                               AWS_EC2_METADATA_DISABLED='true', AWS_CONFIG_FILE=os.devnull,
                               AWS_SHARED_CREDENTIALS_FILE=os.devnull)


@contextlib.contextmanager
def offline_aws_environment() -> Iterator[None]:
    """``os.environ`` with :data:`OFFLINE_AWS_ENVIRONMENT` inside, restored after."""
    saved = dict(os.environ)
    os.environ.update(OFFLINE_AWS_ENVIRONMENT)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def mixed_dataset(path, samples: int, image_shape: Tuple[int, int], array_shape: Tuple[int, int], page_size: int,
                  seed: int):
    """A file of ``samples`` samples: a JPEG image, a float32 array, an int label."""
    import numpy as np
    from .fields import IntField, NDArrayField, RGBImageField
    from .testing import photo_like_image, write_dataset
    rng = np.random.default_rng(seed)
    rows = [(photo_like_image(rng, *image_shape), rng.standard_normal(array_shape).astype(np.float32), k)
            for k in range(samples)]
    fields = {'image': RGBImageField(write_mode='jpg'), 'values': NDArrayField(np.dtype('float32'), array_shape),
              'label': IntField()}
    write_dataset(path, fields, rows, page_size=page_size)
    return path


#: ``storage_options_for(..., **NO_BACKEND_RETRIES)``: botocore's own retries off, so that the
#: retries at work against a failing server are ``ffcv_format.remote``'s
NO_BACKEND_RETRIES = {'config_kwargs': {'retries': {'total_max_attempts': 1, 'mode': 'standard'}}}


def storage_options_for(endpoint_url: str, **extra) -> dict:
    """fsspec storage options reaching an S3 server at ``endpoint_url`` with the dummy
    credentials (``extra`` added, e.g. ``config_kwargs``)."""
    return dict(endpoint_url=endpoint_url, client_kwargs={'region_name': 'eu-west-1'}, **TEST_CREDENTIALS,
                **extra)


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """Run moto's S3 server on 127.0.0.1 (a free port) while the block runs."""
    from moto.server import ThreadedMotoServer
    logging.getLogger('werkzeug').setLevel(logging.ERROR)     # no line per request
    server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@dataclass
class ProxiedRequest:
    """One request the proxy received: method, path, ``Range`` header (or None) and what it
    answered: a status, or ``'reset'``."""
    method: str
    path: str
    range: Optional[str]
    outcome: object


_UNAVAILABLE = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
                b'<Message>Service is unable to handle request.</Message>'
                b'<RequestId>proxy</RequestId></Error>')
_HOP_BY_HOP = {'connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer',
               'upgrade'}


@dataclass
class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``target`` (``http://host:port``).

    Every request is recorded in ``requests``. Ranged GETs (the reads of file contents) can be
    failed: every ``fail_every``-th one (0: none) is answered with ``503 ServiceUnavailable``
    or by resetting the connection, in turn, as listed in ``failures``. ``delay`` seconds are
    added before each answer, like a distant server's latency."""
    target: str
    fail_every: int = 0
    failures: Tuple[str, ...] = ('503', 'reset')
    delay: float = 0.0
    requests: List[ProxiedRequest] = field(default_factory=list)
    endpoint_url: str = ''

    def __post_init__(self):
        self._lock = threading.Lock()
        self._ranged = 0
        self._failed = 0

    def ranged_gets(self, outcome=200) -> List[str]:
        """The ``Range`` headers of the ranged GETs answered with ``outcome``."""
        with self._lock:
            return [r.range for r in self.requests if r.method == 'GET' and r.range and r.outcome == outcome]

    @property
    def injected_failures(self) -> int:
        with self._lock:
            return self._failed

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def _decide(self, method, has_range):
        """None (forward), '503' or 'reset'."""
        with self._lock:
            if method != 'GET' or not has_range or not self.fail_every:
                return None
            self._ranged += 1
            if self._ranged % self.fail_every:
                return None
            self._failed += 1
            return self.failures[(self._failed - 1) % len(self.failures)]

    def _record(self, request):
        with self._lock:
            self.requests.append(request)


def _handler_for(proxy: RecordingProxy):
    target = proxy.target.split('://', 1)[1]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *args):
            pass

        def _forward(self):
            length = int(self.headers.get('Content-Length') or 0)
            body = self.rfile.read(length) if length else None
            ranged = self.headers.get('Range')
            if proxy.delay:
                time.sleep(proxy.delay)
            failure = proxy._decide(self.command, ranged is not None)
            if failure == 'reset':
                proxy._record(ProxiedRequest(self.command, self.path, ranged, 'reset'))
                return self._reset()
            if failure == '503':
                proxy._record(ProxiedRequest(self.command, self.path, ranged, 503))
                return self._answer(503, [('Content-Type', 'application/xml')], _UNAVAILABLE)
            upstream = http.client.HTTPConnection(target, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                kept = [(k, v) for k, v in response.getheaders()
                        if k.lower() not in _HOP_BY_HOP and k.lower() != 'content-length']
                if self.command == 'HEAD':
                    kept.append(('Content-Length', response.getheader('Content-Length', '0')))
                proxy._record(ProxiedRequest(self.command, self.path, ranged, response.status))
                self._answer(response.status, kept, data, head=self.command == 'HEAD')
            finally:
                upstream.close()

        def _answer(self, status, headers, data, head=False):
            self.send_response_only(status)
            for key, value in headers:
                self.send_header(key, value)
            if not head:
                self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def _reset(self):
            """Close the connection with a TCP reset (SO_LINGER 0), without answering: the
            socket is closed for real when the handler's streams are, as it finishes."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                self.connection.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

    return Handler


@contextlib.contextmanager
def recording_proxy(target: str, fail_every: int = 0, failures=('503', 'reset'),
                    delay: float = 0.0) -> Iterator[RecordingProxy]:
    """Run a :class:`RecordingProxy` in front of ``target`` on 127.0.0.1 while the block runs;
    its ``endpoint_url`` is set."""
    proxy = RecordingProxy(target, fail_every=fail_every, failures=tuple(failures), delay=delay)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _handler_for(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name='recording-proxy', daemon=True)
    thread.start()
    proxy.endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
