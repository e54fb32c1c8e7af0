"""--engine ray on a real Ray cluster (2 CPUs, 127.0.0.1, started and stopped here): the
local engine's file byte for byte, a killed conversion resumed without redoing finished
parts (through the work folder, and through object storage on moto's S3 server), bad
images as with the local engine (which can finish a conversion the Ray engine started, and
the other way round), and the errors without Ray or without a cluster."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ffcv_convert import convert, work_dir_for
from ffcv_convert.testing import http_server, ray_cluster, s3_server, truncate_file, write_image_folder
from ffcv_format import IntField, NDArrayField, Reader

NEEDS_RAY = "the Ray engine's tests need Ray: pip install 'ffcv-convert[ray]'"


def ffcv_convert(*arguments):
    """``ffcv-convert convert ARGUMENTS`` in a process of its own (as a user runs it)."""
    return subprocess.run([sys.executable, '-m', 'ffcv_convert', 'convert', *map(str, arguments)],
                          capture_output=True, text=True, timeout=180)


def last_line(text):
    return text.strip().splitlines()[-1]


@pytest.fixture(scope='module')
def cluster():
    pytest.importorskip('ray', reason=NEEDS_RAY)
    with ray_cluster(num_cpus=2) as address:
        yield address


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp('photos')
    write_image_folder(root, 40, classes=3, sizes=(120, 400))
    return root


@pytest.mark.slow
@pytest.mark.parametrize('options', [[], ['--write-mode', 'proportion', '--max-resolution', '64']],
                         ids=['jpg', 'proportion-resized'])
def test_the_ray_engine_writes_the_local_engines_file(cluster, photos, tmp_path, options):
    local, on_ray = tmp_path / 'local.beton', tmp_path / 'ray.beton'
    done = ffcv_convert(photos, local, '--part-size', 6, '-q', *options)
    assert done.returncode == 0, done.stderr
    done = ffcv_convert(photos, on_ray, '--part-size', 6, '--engine', 'ray', '--address', cluster, *options)
    assert done.returncode == 0, done.stderr
    assert 'converting 7 part(s) as Ray tasks (1 CPU each) on a cluster of 2 CPUs' in done.stderr
    assert on_ray.read_bytes() == local.read_bytes()
    assert Reader(on_ray).num_samples == 40
    assert not os.path.exists(work_dir_for(on_ray))


@pytest.mark.slow
def test_webdataset_shards_one_task_each(cluster, photos, tmp_path):
    import webdataset as wds
    entries = sorted(Path(photos).rglob('*.jpg'))[:15]
    for shard in range(3):
        with wds.TarWriter(str(tmp_path / f'train-{shard}.tar')) as sink:
            for k in range(5 * shard, 5 * shard + 5):
                sink.write({'__key__': f'sample{k:03d}', 'jpg': entries[k].read_bytes(), 'cls': k % 3})
    source = str(tmp_path / 'train-{0..2}.tar')
    options = ['--fields', 'image=jpg:image,label=cls:int', '--max-resolution', 48]
    local, on_ray = tmp_path / 'local.beton', tmp_path / 'ray.beton'
    assert ffcv_convert(source, local, '-q', *options).returncode == 0
    done = ffcv_convert(source, on_ray, *options, '--engine', 'ray', '--address', cluster)
    assert done.returncode == 0, done.stderr
    assert 'converting 3 part(s) as Ray tasks' in done.stderr
    assert on_ray.read_bytes() == local.read_bytes()
    assert Reader(on_ray).num_samples == 15
    # which images a proportion field compresses depends on positions in the whole source
    done = ffcv_convert(source, tmp_path / 'p.beton', *options, '--write-mode', 'proportion',
                        '--engine', 'ray', '--address', cluster)
    assert done.returncode == 1 and 'cannot convert WebDataset shards with write_mode=' in done.stderr


# ---------------------------------------------------------------------- killed, then resumed

PARTS = 12
SLOW_OPTIONS = ['--part-size', 4, '--io-workers', 1, '--max-resolution', 40]


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    """48 images (12 parts of 4) served over HTTP, 40 ms per request, so that a conversion
    lasts long enough to be killed half-way; and the local engine's file of them."""
    root = tmp_path_factory.mktemp('served')
    entries = write_image_folder(root / 'train', 4 * PARTS, classes=3, seed=5)
    with http_server(root, delay=0.04) as url:
        source = f"{url}/train/"
        reference = root / 'reference.beton'
        done = ffcv_convert(source, reference, *SLOW_OPTIONS)
        assert done.returncode == 0, done.stderr
        yield source, [Path(path) for path, _ in entries], reference.read_bytes()


@pytest.fixture(scope='module')
def s3():
    with s3_server() as options:
        import s3fs
        s3fs.S3FileSystem(**options).mkdir('conversions')
        yield options


def _finished_parts(folder):
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(int(n[5:11]) for n in names if n.startswith('part-') and n.endswith('.beton'))


def _settled(list_parts, quiet=2.0, limit=20.0):
    """The finished parts once none has appeared for ``quiet`` seconds (tasks of a killed
    driver are stopped by Ray, but one may still finish its part meanwhile)."""
    parts, since, deadline = list_parts(), time.monotonic(), time.monotonic() + limit
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.1)
        now = list_parts()
        if now != parts:
            parts, since = now, time.monotonic()
    return parts


@pytest.mark.slow
@pytest.mark.parametrize('where', ['work-folder', 'parts-url'])
def test_a_killed_conversion_resumes_to_the_same_file_without_redoing_parts(cluster, served, tmp_path, where,
                                                                            request):
    source, images, reference = served
    dst = tmp_path / 'out.beton'
    work = work_dir_for(dst)
    command = [source, dst, *SLOW_OPTIONS, '--engine', 'ray', '--address', cluster]
    store = None
    if where == 'parts-url':
        from ffcv_convert.remote_parts import RemotePartStore
        s3 = request.getfixturevalue('s3')
        url = f"s3://conversions/{tmp_path.name}"
        command += ['--parts-url', url]
        for key, value in s3.items():
            command += ['-P', f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
        store = RemotePartStore(url, s3)

    process = subprocess.Popen([sys.executable, '-m', 'ffcv_convert', 'convert', *map(str, command)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while len(_finished_parts(work)) < 2:
        assert process.poll() is None, f"finished before it could be killed: {process.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.kill()
    process.communicate(timeout=60)
    if store is None:
        kept = _settled(lambda: _finished_parts(work))
    else:  # resumed from another machine: nothing in DST.parts/, the parts on S3
        kept = _settled(store.finished)
        shutil.rmtree(work)
    assert 2 <= len(kept) < PARTS and not dst.exists()

    # the images of the finished parts become unreadable: redoing any of those parts would fail
    originals = {path: path.read_bytes() for part in kept for path in images[4 * part:4 * part + 4]}
    for path in originals:
        path.write_bytes(b'not an image any more')
    try:
        resumed = ffcv_convert(*command)
    finally:
        for path, data in originals.items():  # as they were, for the next test
            path.write_bytes(data)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} of {PARTS} parts reused" in resumed.stdout
    assert dst.read_bytes() == reference
    assert not os.path.exists(work)
    if store is not None:
        assert f"downloading {len(kept)} finished part(s) from {store.url}" in resumed.stderr
        assert store.finished() == [] and not store.fs.exists(store.path)


# ---------------------------------------------------------------------- errors

@pytest.mark.slow
def test_a_bad_image_stops_or_is_skipped_as_with_the_local_engine_which_can_finish_the_work(cluster,
                                                                                             tmp_path):
    root = tmp_path / 'src'
    entries = write_image_folder(root, 12, classes=2, seed=3)
    bad = entries[6][0]
    truncate_file(bad, 0.4)
    arguments = ['--part-size', 4, '-q']
    on_ray = ['--engine', 'ray', '--address', cluster]
    local = ffcv_convert(root, tmp_path / 'local.beton', *arguments)
    ray = ffcv_convert(root, tmp_path / 'ray.beton', *arguments, *on_ray)
    assert local.returncode == ray.returncode == 1
    assert last_line(ray.stderr) == last_line(local.stderr)
    assert last_line(ray.stderr).startswith(f"ffcv-convert convert: error: cannot read {bad}: ")
    assert not (tmp_path / 'ray.beton').exists()
    assert _finished_parts(work_dir_for(tmp_path / 'local.beton')) == [0]  # part 1 holds the bad image
    assert 1 not in _finished_parts(work_dir_for(tmp_path / 'ray.beton'))  # others cancelled or kept

    # each engine finishes the other's conversion, skipping the bad image, as a fresh local one does
    reference = ffcv_convert(root, tmp_path / 'reference.beton', *arguments, '--skip-bad')
    local = ffcv_convert(root, tmp_path / 'ray.beton', *arguments, '--skip-bad')
    ray = ffcv_convert(root, tmp_path / 'local.beton', *arguments, '--skip-bad', *on_ray)
    assert reference.returncode == local.returncode == ray.returncode == 0, ray.stderr
    expected = (tmp_path / 'reference.beton').read_bytes()
    assert (tmp_path / 'local.beton').read_bytes() == expected == (tmp_path / 'ray.beton').read_bytes()
    assert Reader(tmp_path / 'local.beton').num_samples == 11
    report = (tmp_path / 'local.beton.skipped.txt').read_text().splitlines()
    assert report[1:] == (tmp_path / 'reference.beton.skipped.txt').read_text().splitlines()[1:]
    assert report[-1].startswith(f"{bad}\t")


def test_without_ray_the_engine_says_which_extra_to_install(tmp_path):
    write_image_folder(tmp_path / 'src', 3)
    dst = tmp_path / 'out.beton'
    no_ray = ("import sys; sys.modules['ray'] = None; "  # `import ray` fails, as where it is not installed
              "from ffcv_convert.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, '-c', no_ray, 'convert', str(tmp_path / 'src'), str(dst),
                           '--engine', 'ray'], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    message = last_line(done.stderr)
    assert message.startswith("ffcv-convert convert: error: engine='ray' (--engine ray) needs Ray")
    assert message.endswith("pip install 'ffcv-convert[ray]'")
    assert not dst.exists() and not os.path.exists(work_dir_for(dst))


def test_cluster_options_need_the_ray_engine(tmp_path):
    write_image_folder(tmp_path / 'src', 3)
    done = ffcv_convert(tmp_path / 'src', tmp_path / 'out.beton', '--address', '127.0.0.1:6379')
    assert done.returncode == 1
    assert last_line(done.stderr) == "ffcv-convert convert: error: --address is for --engine ray"
    with pytest.raises(ValueError, match="parts_url is for engine='ray'"):
        convert(tmp_path / 'src', tmp_path / 'out.beton', parts_url='s3://bucket/parts')


def test_an_address_where_no_cluster_answers_is_an_error_at_once(photos, tmp_path):
    pytest.importorskip('ray', reason=NEEDS_RAY)
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    done = ffcv_convert(photos, tmp_path / 'out.beton', '--engine', 'ray', '--address', address)
    assert done.returncode == 1 and time.monotonic() - started < 30
    message = last_line(done.stderr)
    assert message.startswith(f"ffcv-convert convert: error: no Ray cluster answers at {address}")
    assert not os.path.exists(work_dir_for(tmp_path / 'out.beton'))


def test_an_iterable_cannot_be_split_among_tasks(tmp_path):
    pytest.importorskip('ray', reason=NEEDS_RAY)
    fields = {'vec': NDArrayField(np.dtype('float32'), (2,)), 'label': IntField()}
    items = ((np.zeros(2, np.float32), k) for k in range(5))
    with pytest.raises(ValueError, match="known only by reading it in order"):
        convert(items, tmp_path / 'out.beton', fields=fields, engine='ray', progress=False)
    assert not os.path.exists(work_dir_for(tmp_path / 'out.beton'))
