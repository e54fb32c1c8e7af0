"""A write that runs out of space fails with an OSError that keeps the system's errno and
names the output path (not an EncodeError blaming a sample), and leaves nothing behind: the
incomplete file is discarded and a file already at the path is untouched.

Both ways the writer places data are covered: pages written by the collecting thread (the
built-in fields), and pages written by the encoding threads from inside a field's ``encode``
(an application's field that declares no ``pointer_names``). Each scenario runs in a child
process, which reports what it saw as JSON.
"""
import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

SCENARIOS = textwrap.dedent('''
    import errno, json, os, subprocess, sys
    import numpy as np
    from ffcv_format import BytesField, DatasetWriter, EncodeError, IntField
    from ffcv_format.fields.base import Field, empty_arguments

    class Blob(Field):   # allocates, declares no pointer_names: threads write the pages
        metadata_type = np.dtype([('where', '<u8'), ('length', '<u8')])
        @staticmethod
        def from_binary(binary):
            return Blob()
        def to_binary(self):
            return empty_arguments()
        def encode(self, destination, value, malloc):
            ptr, buffer = malloc(len(value))
            buffer[:] = np.frombuffer(value, np.uint8)
            destination['where'], destination['length'] = ptr, len(value)

    folder, setup = sys.argv[1], sys.argv[2]
    if setup == 'tmpfs':
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', folder], check=True)
    else:   # a file size limit of 6 MiB: writes past it fail with EFBIG
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (6 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    def free_bytes():
        stat = os.statvfs(folder)
        return stat.f_bavail * stat.f_frsize

    samples = [(k, bytes([k % 251]) * 100_000) for k in range(150)]     # 15 MB of data
    report = []
    for placement in ('collector', 'threads'):
        for existing in (False, True):
            target = os.path.join(folder, f'{placement}.beton')
            if existing:
                with open(target, 'wb') as f:
                    f.write(b'an older dataset')
            fields = {'label': IntField(), 'data': BytesField() if placement == 'collector' else Blob()}
            before = free_bytes()
            seen = {'placement': placement, 'existing': existing, 'target': target}
            try:
                DatasetWriter(target, fields, page_size=1 << 21, num_workers=2, progress=False
                              ).from_indexed_dataset(samples, chunksize=10)
                seen['error'] = None
            except BaseException as e:
                seen.update(error=type(e).__name__, oserror=isinstance(e, OSError),
                            encode_error=isinstance(e, EncodeError), errno=getattr(e, 'errno', None),
                            filename=getattr(e, 'filename', None), message=str(e),
                            notes=getattr(e, '__notes__', []))
            seen['listing'] = sorted(os.listdir(folder))
            seen['content'] = open(target, 'rb').read().decode('latin-1') if os.path.exists(target) else None
            seen['freed'] = free_bytes() - before
            if os.path.exists(target):
                os.unlink(target)
            report.append(seen)
    print(json.dumps(report))
''')


def run_scenarios(tmp_path, setup, prefix=()):
    folder = tmp_path / 'small'
    folder.mkdir()
    script = tmp_path / 'scenarios.py'
    script.write_text(SCENARIOS)
    result = subprocess.run([*prefix, sys.executable, str(script), str(folder), setup],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_failure(seen, code, words):
    name = os.path.basename(seen['target'])
    assert seen['error'] == 'OutputWriteError', seen
    assert seen['oserror'] and not seen['encode_error']
    assert seen['errno'] == code
    assert seen['filename'] == seen['target']
    assert repr(seen['target']) in seen['message'] and words in seen['message'], seen['message']
    assert 'sample' not in seen['message']
    if seen['existing']:
        assert seen['listing'] == [name] and seen['content'] == 'an older dataset'
        assert any('left as it was' in note for note in seen['notes']), seen['notes']
    else:
        assert seen['listing'] == [] and seen['content'] is None
        assert any('nothing was created' in note for note in seen['notes']), seen['notes']


def mount_prefix(tmp_path):
    """The command prefix under which a child process may mount a tmpfs, or None and why."""
    if shutil.which('unshare') is None:
        return None, "the unshare command is not installed"
    probe = tmp_path / 'probe'
    probe.mkdir()
    reasons = []
    candidates = [['unshare', '--user', '--map-root-user', '--mount']]
    if os.geteuid() == 0:
        candidates.append(['unshare', '--mount'])
    for prefix in candidates:
        result = subprocess.run([*prefix, 'mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(probe)],
                                capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            return prefix, None
        reasons.append(f"{' '.join(prefix)}: {result.stderr.strip() or result.returncode}")
    return None, "; ".join(reasons)


def test_a_full_disk_is_reported_as_such_naming_the_path(tmp_path):
    """On a real 8 MiB tmpfs, mounted in a private mount namespace (as root, or as any user
    where unprivileged user namespaces are enabled), 15 MB of samples fill it."""
    prefix, why = mount_prefix(tmp_path)
    if prefix is None:
        pytest.skip(f"cannot mount a small tmpfs here (needs root or unprivileged user namespaces): {why}")
    report = run_scenarios(tmp_path, 'tmpfs', prefix)
    assert len(report) == 4
    for seen in report:
        check_failure(seen, errno.ENOSPC, 'the disk is full')
        assert seen['freed'] >= -(64 << 10), seen      # the discarded file's space is back


def test_a_file_size_limit_is_reported_naming_the_path(tmp_path):
    """Without privileges: a file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) makes the
    writer's pwrite fail with EFBIG past 6 MiB, the lowest-level way to make a write fail
    for a reason of the storage. It goes through the same handling as ENOSPC."""
    report = run_scenarios(tmp_path, 'rlimit')
    assert len(report) == 4
    for seen in report:
        check_failure(seen, errno.EFBIG, 'file size limit')


def test_the_error_keeps_errno_names_the_path_and_pickles():
    import pickle
    from ffcv_format.errors import OutputWriteError
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    error = OutputWriteError.from_os_error('/data/train.beton', full)
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC and error.path == '/data/train.beton'
    assert str(error) == ("cannot write '/data/train.beton': the disk is full (no space left on the device "
                          "that holds it) [Errno 28]")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is OutputWriteError and str(copy) == str(error) and copy.errno == errno.ENOSPC
    other = OutputWriteError.from_os_error('/x.beton', OSError(errno.EIO, 'Input/output error'))
    assert str(other) == "cannot write '/x.beton': Input/output error [Errno 5]"
