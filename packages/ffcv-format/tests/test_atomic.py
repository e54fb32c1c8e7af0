"""A writer killed after giving its complete file a hidden name, and before renaming it over
the target, leaves that full-size ``.NAME.tmp-PID-HEX`` file; so does a writer killed
mid-write where the filesystem lacks O_TMPFILE. The next write to the same target removes
such leftovers when their writer no longer runs, and leaves those of a running writer alone."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from ffcv_format import BytesField, DatasetWriter, IntField, Reader
from ffcv_format.atomic import AtomicFile, remove_stale_temp_files

STALLED_WRITER = textwrap.dedent('''
    import os, sys, time
    import numpy as np
    from ffcv_format import BytesField, DatasetWriter, IntField

    target, marker, where = sys.argv[1], sys.argv[2], sys.argv[3]
    replace = os.replace

    def say(text):
        with open(marker + '.part', 'w') as f:
            f.write(text)
        replace(marker + '.part', marker)

    if where == 'before-rename':      # stop once the file is complete and has its hidden name
        def stalled_replace(source, destination):
            if os.path.basename(source).startswith('.'):
                say(source)
                time.sleep(600)
            return replace(source, destination)
        os.replace = stalled_replace
        samples = [(k, bytes([k]) * 50_000) for k in range(100)]
    else:                             # no O_TMPFILE: the temporary file has its name from the start
        del os.O_TMPFILE

        class Slow:
            def __len__(self):
                return 100_000
            def __getitem__(self, k):
                if k == 300:
                    say('started')
                if k >= 300:
                    time.sleep(0.01)
                return k, bytes([k % 256]) * 50_000
        samples = Slow()
    DatasetWriter(target, {'label': IntField(), 'data': BytesField()}, page_size=1 << 21, num_workers=2,
                  progress=False).from_indexed_dataset(samples, chunksize=10)
''')


def start_stalled_writer(tmp_path, target, where):
    script = tmp_path / 'writer.py'
    script.write_text(STALLED_WRITER)
    marker = tmp_path / f'marker-{where}'
    process = subprocess.Popen([sys.executable, str(script), str(target), str(marker), where],
                               stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not marker.exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.time() < deadline, "the writer never got there"
        time.sleep(0.02)
    return process, marker.read_text()


def hidden_files(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith('.'))


def write_new(target):
    DatasetWriter(target, {'label': IntField(), 'data': BytesField()}, page_size=1 << 21,
                  progress=False).from_indexed_dataset([(7, b'new')])


def test_a_writer_killed_before_its_rename_leaves_a_file_the_next_write_removes(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    target = out / 'data.beton'
    target.write_bytes(b'an older dataset')
    process, leftover = start_stalled_writer(tmp_path, target, 'before-rename')
    try:
        name = os.path.basename(leftover)
        assert name.startswith(f'.data.beton.tmp-{process.pid}-')
        assert os.path.getsize(leftover) > 100 * 50_000            # the complete new file
        assert Reader(leftover).num_samples == 100
        # its writer still runs: a new AtomicFile for the target leaves the file alone
        other = AtomicFile(target, overwrite=True)
        other.abort()
        assert other.removed_leftovers == [] and hidden_files(out) == [name]
    finally:
        process.kill()
        process.wait(timeout=60)
    assert target.read_bytes() == b'an older dataset' and hidden_files(out) == [name]
    write_new(target)
    assert os.listdir(out) == ['data.beton']
    assert Reader(target)[0][0] == 7


def test_a_writer_killed_mid_write_without_o_tmpfile_leaves_a_file_the_next_write_removes(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    target = out / 'data.beton'
    process, _ = start_stalled_writer(tmp_path, target, 'mid-write')
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    leftovers = hidden_files(out)
    assert len(leftovers) == 1 and leftovers[0].startswith(f'.data.beton.tmp-{process.pid}-')
    assert os.path.getsize(out / leftovers[0]) > 300 * 50_000
    write_new(target)
    assert os.listdir(out) == ['data.beton']


def dead_pid():
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def test_only_leftovers_of_the_same_target_whose_writer_is_gone_are_removed(tmp_path):
    target = tmp_path / 'data.beton'
    gone = dead_pid()
    stale = tmp_path / f'.data.beton.tmp-{gone}-0123abcd'
    stale.write_bytes(b'x' * 1000)
    kept = [tmp_path / f'.data.beton.tmp-{os.getpid()}-89abcdef',     # a running writer's
            tmp_path / f'.other.beton.tmp-{gone}-0123abcd',           # another target's
            tmp_path / f'.data.beton.tmp-{gone}-notahex1',             # not the pattern
            tmp_path / f'data.beton.tmp-{gone}-0123abcd',              # not hidden
            tmp_path / f'.data.beton.tmp-{gone}-0123abcd.bak']
    for path in kept:
        path.write_bytes(b'y')
    folder = tmp_path / f'.data.beton.tmp-{gone}-deadbeef'
    folder.mkdir()                                                    # not a file
    atomic = AtomicFile(target, overwrite=True)
    atomic.abort()
    assert atomic.removed_leftovers == [str(stale)]
    assert not stale.exists() and all(path.exists() for path in kept) and folder.is_dir()
    assert remove_stale_temp_files(target) == []


def test_a_reused_pid_or_a_zombie_does_not_keep_a_leftover(tmp_path):
    target = tmp_path / 'data.beton'
    sleeper = subprocess.Popen(['sleep', '60'])
    zombie = subprocess.Popen([sys.executable, '-c', 'pass'])
    try:
        time.sleep(0.5)   # the second child has exited; not waited for, it is a zombie
        # a leftover last changed an hour before its PID's process started: the PID was reused
        reused = tmp_path / f'.data.beton.tmp-{sleeper.pid}-00000001'
        reused.write_bytes(b'x')
        an_hour_ago = time.time() - 3600
        os.utime(reused, (an_hour_ago, an_hour_ago))
        running = tmp_path / f'.data.beton.tmp-{sleeper.pid}-00000002'    # changed since it started
        running.write_bytes(b'x')
        of_zombie = tmp_path / f'.data.beton.tmp-{zombie.pid}-00000003'
        of_zombie.write_bytes(b'x')
        removed = remove_stale_temp_files(target)
        assert sorted(removed) == sorted([str(reused), str(of_zombie)])
        assert running.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
        zombie.wait()


def test_leftovers_in_a_separate_temp_dir_are_removed_too(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    target = tmp_path / 'data.beton'
    gone = dead_pid()
    in_work = work / f'.data.beton.tmp-{gone}-00c0ffee'
    beside = tmp_path / f'.data.beton.tmp-{gone}-00beef00'
    for path in (in_work, beside):
        path.write_bytes(np.zeros(10, np.uint8).tobytes())
    atomic = AtomicFile(target, overwrite=True, temp_dir=work)
    os.pwrite(atomic.fd, b'done', 0)
    atomic.commit()
    assert sorted(atomic.removed_leftovers) == sorted([str(in_work), str(beside)])
    assert target.read_bytes() == b'done' and os.listdir(work) == []
