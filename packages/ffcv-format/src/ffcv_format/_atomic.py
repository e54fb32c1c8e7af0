"""A file that appears under its final name only once it is complete."""
import errno
import os
import secrets


class AtomicFile:
    """Write a file in place of `path`; `commit()` publishes it, `abort()` discards it.

    Where the filesystem supports it (Linux, O_TMPFILE) the data lives in an unnamed
    file that vanishes if the process dies; elsewhere in a hidden ``.NAME.partial-*``
    file beside the target, removed on abort.
    """

    def __init__(self, path, overwrite=False):
        self.path = os.path.abspath(os.fspath(path))
        self.overwrite = overwrite
        self.directory = os.path.dirname(self.path)
        if not os.path.isdir(self.directory):
            raise FileNotFoundError(f"the directory of {path!r} does not exist")
        self._check_target()
        self.temp_path = None
        self.fd = None
        if hasattr(os, 'O_TMPFILE'):
            try:
                self.fd = os.open(self.directory, os.O_TMPFILE | os.O_RDWR, 0o644)
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                    raise
        if self.fd is None:
            name = f".{os.path.basename(self.path)}.partial-{os.getpid()}-{secrets.token_hex(4)}"
            self.temp_path = os.path.join(self.directory, name)
            self.fd = os.open(self.temp_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)

    def _check_target(self):
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"{self.path!r} is a directory")
        if not self.overwrite and os.path.lexists(self.path):
            raise FileExistsError(f"{self.path!r} already exists; pass overwrite=True to replace it")

    def commit(self):
        os.fsync(self.fd)
        try:
            if self.overwrite:
                staged = self.temp_path
                if staged is None:
                    staged = os.path.join(self.directory, f".{os.path.basename(self.path)}"
                                          f".partial-{os.getpid()}-{secrets.token_hex(4)}")
                    self._link_to(staged)
                os.replace(staged, self.path)
            else:
                try:
                    self._link_to(self.path)  # fails if the target exists: never clobbers
                except FileExistsError:
                    raise FileExistsError(
                        f"{self.path!r} appeared while writing; pass overwrite=True to replace it") from None
                if self.temp_path is not None:
                    os.unlink(self.temp_path)
            self.temp_path = None
        finally:
            self._close()
        try:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass

    def _link_to(self, path):
        if self.temp_path is not None:
            os.link(self.temp_path, path)
            return
        # An O_TMPFILE file gets its first name through linkat() of /proc/self/fd/N,
        # following the magic link (plain link() would link the symlink itself).
        proc_fd = os.open('/proc/self/fd', os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.link(str(self.fd), path, src_dir_fd=proc_fd, follow_symlinks=True)
        finally:
            os.close(proc_fd)

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
