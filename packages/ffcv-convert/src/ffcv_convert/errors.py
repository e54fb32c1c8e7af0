"""Exceptions raised by ffcv_convert."""


class ConversionError(Exception):
    """A conversion cannot go on; the message says why and what to do.

    Work already finished is kept: running the same conversion again resumes it.
    """


class BadSampleError(ValueError):
    """A source sample cannot be read: a missing, unreadable or corrupt file.

    ``where`` names it (a path or URL, or a shard and key). Converting with
    ``on_error='skip'`` (``--skip-bad``) skips such samples and lists them in a report.
    """

    def __init__(self, reason, where=None):
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.where = where


class FieldMismatchError(ValueError):
    """Files that must have the same fields (to be concatenated or appended) do not."""
