"""Files that appear under their final name only once complete (used by the writer and by
the converters: ``AtomicFile`` for large outputs, ``write_text_atomically`` for small ones)."""
import errno
import os
import secrets

from .errors import OutputExistsError


class AtomicFile:
    """Write ``path`` through a hidden temporary file; ``commit()`` publishes, ``abort()`` discards.

    The temporary file lives in ``temp_dir`` (default: the target's folder, which must be
    on the same filesystem). On Linux it has no name until committed (O_TMPFILE), so a
    killed process leaves nothing behind. Without ``overwrite`` an existing target is
    never replaced.
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
