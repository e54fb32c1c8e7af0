"""Exceptions raised by ffcv_format."""


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
