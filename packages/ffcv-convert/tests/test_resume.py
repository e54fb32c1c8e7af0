"""Interrupted conversions (SIGINT, SIGKILL, an exception) resume and give the same file."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from ffcv_convert import convert, work_dir_for
from ffcv_convert.testing import http_server, write_image_folder
from ffcv_format import IntField, NDArrayField, Reader

SCRIPT = textwrap.dedent("""
    import sys
    from ffcv_convert import convert
    result = convert(sys.argv[1], sys.argv[2], part_size=4, io_workers=1, workers=1,
                     image_options={'max_resolution': 40}, progress=False)
    print('parts reused:', result.parts_reused, 'of', result.num_parts)
""")


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp('served')
    write_image_folder(root / 'train', 48, classes=3, seed=11)
    # every request takes 25 ms, as from a distant server: a conversion lasts long enough to interrupt
    with http_server(root, delay=0.025) as url:
        yield f"{url}/train/"


def _finished_parts(dst):
    try:
        return sorted(n for n in os.listdir(work_dir_for(dst)) if n.endswith('.beton'))
    except FileNotFoundError:
        return []


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGKILL], ids=['SIGINT', 'SIGKILL'])
def test_interrupted_conversion_resumes_to_the_same_file(served, tmp_path, signum):
    reference = tmp_path / 'reference.beton'
    subprocess.run([sys.executable, '-c', SCRIPT, served, str(reference)], check=True, timeout=120)

    dst = tmp_path / 'out.beton'
    process = subprocess.Popen([sys.executable, '-c', SCRIPT, served, str(dst)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(_finished_parts(dst)) < 3:
        assert process.poll() is None, f"finished before it could be interrupted: {process.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode in ((-signal.SIGINT, 130) if signum == signal.SIGINT else (-signal.SIGKILL,))
    if signum == signal.SIGINT:
        assert b'KeyboardInterrupt' in err
    assert not dst.exists()
    kept = _finished_parts(dst)
    assert 3 <= len(kept) < 12

    resumed = subprocess.run([sys.executable, '-c', SCRIPT, served, str(dst)], check=True, timeout=120,
                             capture_output=True, text=True)
    assert f'parts reused: {len(kept)} of 12' in resumed.stdout
    assert dst.read_bytes() == reference.read_bytes()
    assert not os.path.exists(work_dir_for(dst))


class Interrupted(KeyboardInterrupt):
    pass


def _items(stop_after=None):
    for k in range(100):
        if k == stop_after:
            raise Interrupted()
        yield np.full(5, k, np.float32), k


def test_iterable_resumes_by_skipping_what_is_done(tmp_path):
    fields = {'vec': NDArrayField(np.dtype('float32'), (5,)), 'label': IntField()}
    convert(lambda: _items(), tmp_path / 'reference.beton', fields=fields, part_size=5, progress=False)
    dst = tmp_path / 'out.beton'
    # items are read ahead of the writer (64 here), so the parts before that are written
    with pytest.raises(Interrupted):
        convert(lambda: _items(stop_after=90), dst, fields=fields, part_size=5, progress=False)
    kept = _finished_parts(dst)
    assert 2 <= len(kept) < 18 and kept == [f'part-{k:06d}.beton' for k in range(len(kept))]
    result = convert(lambda: _items(), dst, fields=fields, part_size=5, progress=False)
    assert (result.parts_reused, result.num_parts, result.num_samples) == (len(kept), 20, 100)
    assert dst.read_bytes() == (tmp_path / 'reference.beton').read_bytes()
    reader = Reader(dst)
    assert [reader[i][1] for i in range(100)] == list(range(100))


def test_a_second_conversion_into_the_same_work_folder_is_refused(tmp_path):
    import fcntl

    from ffcv_convert import ConversionError
    write_image_folder(tmp_path / 'src', 3)
    dst = tmp_path / 'out.beton'
    os.makedirs(work_dir_for(dst))
    with open(os.path.join(work_dir_for(dst), 'lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(ConversionError, match='another conversion is running'):
            convert(tmp_path / 'src', dst, progress=False)
    convert(tmp_path / 'src', dst, progress=False)
    assert Reader(dst).num_samples == 3


def test_a_run_that_died_after_the_merge_only_cleans_up(tmp_path, monkeypatch):
    import ffcv_convert.conversion as conversion

    samples = [(np.full(5, k, np.float32), k) for k in range(30)]
    fields = {'vec': NDArrayField(np.dtype('float32'), (5,)), 'label': IntField()}
    dst = tmp_path / 'out.beton'

    class Died(BaseException):
        pass

    real_rmtree = conversion.shutil.rmtree

    def die_on_cleanup(path, *args, **kwargs):
        if str(path) == work_dir_for(dst):
            raise Died()
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(conversion.shutil, 'rmtree', die_on_cleanup)
    with pytest.raises(Died):
        convert(samples, dst, fields=fields, part_size=10, progress=False)
    monkeypatch.setattr(conversion.shutil, 'rmtree', real_rmtree)
    assert dst.exists() and os.path.isdir(work_dir_for(dst))     # merged, work folder left behind

    before = dst.read_bytes()
    result = convert(samples, dst, fields=fields, part_size=10, progress=False)
    assert (result.num_samples, result.num_parts, result.parts_reused) == (30, 3, 3)
    assert dst.read_bytes() == before and not os.path.exists(work_dir_for(dst))
    # an existing file that is not this conversion's result is still never replaced
    with pytest.raises(FileExistsError, match='overwrite'):
        convert(samples, dst, fields=fields, part_size=10, progress=False)
