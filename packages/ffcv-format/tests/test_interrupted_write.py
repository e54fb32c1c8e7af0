"""A writer killed or interrupted mid-write leaves no file and never touches an old one."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ffcv_format import Reader

WRITER = textwrap.dedent('''
    import sys, time
    import numpy as np
    from ffcv_format import DatasetWriter, IntField, NDArrayField

    target, marker = sys.argv[1], sys.argv[2]

    class Slow:
        def __len__(self):
            return 100_000
        def __getitem__(self, index):
            if index == 200:
                open(marker, 'w').close()  # well into the write: pages are on disk
            if index >= 200:
                time.sleep(0.01)
            return index, np.full(50_000, index % 256, np.uint8)

    DatasetWriter(target, {'label': IntField(), 'x': NDArrayField(np.dtype('uint8'), (50_000,))},
                  page_size=1 << 21, num_workers=2, overwrite=True,
                  progress=False).from_indexed_dataset(Slow(), chunksize=10)
''')


def start_writer(tmp_path, target):
    script = tmp_path / 'writer.py'
    script.write_text(WRITER)
    marker = tmp_path / 'started'
    process = subprocess.Popen([sys.executable, str(script), str(target), str(marker)],
                               stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not marker.exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.time() < deadline, "the writer never started"
        time.sleep(0.02)
    return process


@pytest.mark.parametrize('existing', [False, True])
@pytest.mark.parametrize('how', [signal.SIGKILL, signal.SIGINT])
def test_interrupted_writer_leaves_no_file(tmp_path, how, existing):
    out = tmp_path / 'out'
    out.mkdir()
    target = out / 'data.beton'
    if existing:
        target.write_bytes(b'an older dataset')
    process = start_writer(tmp_path, target)
    time.sleep(0.3)
    process.send_signal(how)
    process.wait(timeout=60)
    assert process.returncode != 0
    if how == signal.SIGINT:
        assert b'KeyboardInterrupt' in process.stderr.read()
    if existing:
        assert target.read_bytes() == b'an older dataset'
        assert os.listdir(out) == ['data.beton']
    else:
        assert os.listdir(out) == []


def test_uninterrupted_writer_publishes_the_file(tmp_path):
    # The same script, left to finish on a smaller dataset, does publish its file.
    script = tmp_path / 'writer.py'
    script.write_text(WRITER.replace('100_000', '300'))
    target = tmp_path / 'data.beton'
    subprocess.run([sys.executable, str(script), str(target), str(tmp_path / 'm')], check=True, timeout=120)
    reader = Reader(target)
    assert reader.num_samples == 300
    assert reader[299][0] == 299 and (reader[299][1] == 299 % 256).all()


def test_ctrl_c_at_any_moment_stops_the_writer(tmp_path):
    """Ctrl-C at 8 different moments stops the writer and leaves no file. (A Ctrl-C that
    landed inside concurrent.futures.wait() once hung the writer; that window is tiny and
    this test does not hit it reliably: the writer no longer calls wait().)"""
    for k in range(8):
        run = tmp_path / f'run{k}'
        out = run / 'out'
        out.mkdir(parents=True)
        process = start_writer(run, out / 'data.beton')
        time.sleep(0.013 * k)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"the writer did not stop {0.013 * k:.3f} s after Ctrl-C")
        assert process.returncode != 0
        assert os.listdir(out) == []
