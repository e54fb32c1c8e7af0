"""Files that appear under their final name only once complete (used by the writer and by
the converters: ``AtomicFile`` for large outputs, ``write_text_atomically`` for small ones)."""
import errno
import os
import re
import secrets
from typing import List

from .errors import OutputExistsError

# .NAME.tmp-PID-HEX: the hidden name of a temporary file (see AtomicFile._temp_name)
_TEMP_NAME = re.compile(r'\.(?P<target>.+)\.tmp-(?P<pid>[0-9]+)-[0-9a-f]{8}')
# how much later than a leftover's last change its PID's process may have started and still
# be taken for its writer (boot time and start times are known to about a second)
_START_TIME_SLACK = 5.0


class AtomicFile:
    """Write ``path`` through a hidden temporary file; ``commit()`` publishes, ``abort()`` discards.

    The temporary file lives in ``temp_dir`` (default: the target's folder, which must be
    on the same filesystem). On Linux it has no name until committed (O_TMPFILE), so a
    killed process leaves nothing behind, except in one short moment: when replacing a
    file (``overwrite``), the complete file is given a hidden name ``.NAME.tmp-PID-HEX``
    and then renamed over the target; where the filesystem lacks O_TMPFILE it has that
    name from the start. Such a file left by a writer that was killed is removed by the
    next ``AtomicFile`` for the same target (see :func:`remove_stale_temp_files`).
    Without ``overwrite`` an existing target is never replaced.

    ``removed_leftovers``: the paths of the stale files this one removed.
    """

    def __init__(self, path, overwrite=False, temp_dir=None):
        self.path = os.path.abspath(os.fspath(path))
        self.overwrite = overwrite
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"the directory of {os.fspath(path)!r} does not exist")
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"{os.fspath(path)!r} is a directory")
        if not overwrite and os.path.lexists(self.path):
            raise OutputExistsError(os.fspath(path))
        self.temp_dir = os.path.abspath(temp_dir or directory)
        self.removed_leftovers = []
        for folder in dict.fromkeys([self.temp_dir, directory]):
            self.removed_leftovers += remove_stale_temp_files(self.path, folder)
        self.temp_path = None
        self.fd = None
        if hasattr(os, 'O_TMPFILE'):
            try:
                self.fd = os.open(self.temp_dir, os.O_TMPFILE | os.O_RDWR, 0o644)
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                    raise
        if self.fd is None:
            self.temp_path = self._temp_name()
            self.fd = os.open(self.temp_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)

    def _temp_name(self):
        return os.path.join(self.temp_dir, f".{os.path.basename(self.path)}.tmp-{os.getpid()}-"
                                           f"{secrets.token_hex(4)}")

    def _link(self, target):
        if self.temp_path is not None:
            os.link(self.temp_path, target)
            return
        proc_fd = os.open('/proc/self/fd', os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.link(str(self.fd), target, src_dir_fd=proc_fd, follow_symlinks=True)
        finally:
            os.close(proc_fd)

    def commit(self):
        os.fsync(self.fd)
        try:
            if self.overwrite:
                staged = self.temp_path
                if staged is None:
                    staged = self._temp_name()
                    self._link(staged)
                os.replace(staged, self.path)
            else:
                try:
                    self._link(self.path)
                except FileExistsError:
                    raise OutputExistsError(self.path, 'it appeared while writing; pass overwrite=True '
                                                       'to replace it') from None
                if self.temp_path is not None:
                    os.unlink(self.temp_path)
            self.temp_path = None
        finally:
            self._close()
        _fsync_dir(os.path.dirname(self.path))

    def abort(self):
        self._close()
        if self.temp_path is not None:
            try:
                os.unlink(self.temp_path)
            except FileNotFoundError:
                pass
            self.temp_path = None

    def _close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def remove_stale_temp_files(path, directory=None) -> List[str]:
    """Remove the temporary files (``.NAME.tmp-PID-HEX``) that writers of ``path`` left in
    ``directory`` (default: the folder of ``path``) because they were killed; return their
    paths.

    A file is stale when no process with its PID runs (a zombie counts as not running), or
    when the process with that PID started after the file was last changed (the PID was
    reused). Files of a writer still running are left alone, as is anything that cannot be
    removed. PIDs are those of this machine (its PID namespace): writers on other machines
    sharing the folder are not seen.
    """
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path) if directory is None else os.fspath(directory)
    prefix = f".{os.path.basename(path)}.tmp-"
    removed = []
    try:
        with os.scandir(directory) as listing:
            entries = [entry for entry in listing if entry.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None or match['target'] != os.path.basename(path):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            changed = entry.stat(follow_symlinks=False).st_mtime
            if _writer_may_run(int(match['pid']), changed):
                continue
            os.unlink(entry.path)
        except OSError:
            continue    # gone already, or not ours to remove
        removed.append(entry.path)
    return removed


def _writer_may_run(pid, changed):
    """Whether process ``pid`` runs and may be the writer of a file last changed at ``changed``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass        # it runs, as another user
    except OSError:
        return True
    state, started = _process_state(pid)
    if state in ('Z', 'X'):
        return False
    return started is None or started <= changed + _START_TIME_SLACK


def _process_state(pid):
    """``(state letter, start time in seconds since the epoch)`` of ``pid`` from /proc;
    ``None`` for what cannot be read."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            fields = f.read().rsplit(b')', 1)[1].split()
        state = fields[0].decode('ascii', 'replace')
        ticks = int(fields[19])
    except (OSError, IndexError, ValueError):
        return None, None
    try:
        with open('/proc/stat', 'rb') as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b'btime '))
        return state, boot + ticks / os.sysconf('SC_CLK_TCK')
    except (OSError, StopIteration, ValueError):
        return state, None


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def write_text_atomically(path, text):
    """Write a small text file through a temporary name and a rename."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, 'w', encoding='utf-8') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    _fsync_dir(os.path.dirname(os.path.abspath(path)))
