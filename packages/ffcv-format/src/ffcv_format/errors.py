"""Exceptions raised by ffcv_format."""
import contextlib
import errno


class FormatError(ValueError):
    """A `.beton` file is not valid: truncated, corrupted, or of an unknown version."""


class EncodeError(ValueError):
    """A value could not be encoded into its field.

    The message names the sample index and the field. The attributes `sample_id`
    and `field` carry them too (either may be ``None`` when unknown).
    """

    def __init__(self, message, sample_id=None, field=None):
        super().__init__(message)
        self.sample_id = sample_id
        self.field = field


class OutputExistsError(FileExistsError):
    """The output file exists and replacing it was not asked for.

    ``path`` is the file. The message says how to replace it from Python
    (``overwrite=True``); command lines say their own flag instead (``--overwrite``).
    """

    def __init__(self, path, how='pass overwrite=True to replace it'):
        super().__init__(f"{path!r} already exists; {how}")
        self.path = path


#: exception types rebuilt with the context in their message (they carry nothing else)
_REBUILT = (FormatError, ValueError, TypeError, RuntimeError, IndexError, KeyError, AssertionError,
            NotImplementedError, ZeroDivisionError, OverflowError)


def in_context(error: BaseException, context: str, rebuilt=_REBUILT) -> BaseException:
    """``error`` with ``context`` (where it happened) in front of its message: a new exception
    of the same type when its type is one of ``rebuilt`` (plain types that carry only a
    message; raise it ``from error``), else ``error`` itself with the context added as a note."""
    if type(error) in rebuilt:
        message = error.args[0] if isinstance(error, KeyError) and len(error.args) == 1 else error
        return type(error)(f"{context}: {message}")
    if hasattr(error, 'add_note'):
        error.add_note(context)
    return error


class OutputWriteError(OSError):
    """The output file could not be written for a reason of the storage, not of the data: the
    disk is full (``errno.ENOSPC``), a disk quota or a file size limit is reached (``EDQUOT``,
    ``EFBIG``), the device failed (``EIO``)...

    ``errno`` is the system's error number (kept from the failed call), ``filename`` (also
    ``path``) the output file, ``strerror`` what happened in words; the message gives all
    three, e.g. ``cannot write '/data/train.beton': the disk is full (no space left on the
    device that holds it) [Errno 28]``.
    """

    def __init__(self, code: int, reason: str, path: str):
        super().__init__(code, reason, path)

    @property
    def path(self) -> str:
        return self.filename

    def __str__(self):
        return f"cannot write {self.filename!r}: {self.strerror} [Errno {self.errno}]"

    @classmethod
    def from_os_error(cls, path: str, error: OSError) -> 'OutputWriteError':
        """The error to raise for ``error`` (an ``OSError``) met while writing ``path``."""
        return cls(error.errno, _storage_reason(error), path)


@contextlib.contextmanager
def output_write_errors(path: str):
    """Within the block, an ``OSError`` met while writing the output file ``path`` is raised as
    an :class:`OutputWriteError` naming it (``OutputExistsError`` and ``OutputWriteError``
    pass unchanged)."""
    try:
        yield
    except (OutputWriteError, OutputExistsError):
        raise
    except OSError as error:
        raise OutputWriteError.from_os_error(path, error) from error


def _storage_reason(error):
    reasons = {
        errno.ENOSPC: "the disk is full (no space left on the device that holds it)",
        errno.EDQUOT: "the disk quota is exceeded (no space left for this user on that device)",
        errno.EFBIG: "the file would be larger than allowed (the process's file size limit, "
                     "`ulimit -f`, or the largest file the filesystem holds)",
    }
    return reasons.get(error.errno, error.strerror or str(error))
