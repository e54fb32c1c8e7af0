"""What every decoder shares."""
import numpy as np

from ..operation import Operation


class Decoder(Operation):
    """First operation of a pipeline: turns a batch of sample indices into data.

    Its code is called as ``code(batch_indices, destination, metadata, storage_state)``
    where ``metadata`` is the field's metadata column (indexed by sample id) and
    ``storage_state`` is what ``self.memory_read(ptr, storage_state)`` reads from.
    Decoders here run as Python around module-level compiled kernels (cached on disk),
    on a part of the batch per worker thread.
    """

    is_parallel = True
    #: the file's page size, given by the pipeline (None when unknown): no allocation is
    #: larger, which bounds the buffers a decoder sizes from the metadata
    page_size = None
    #: samples of several views, ``(views, ...)`` (a multi-view decoder sets it): the numpy
    #: operations after the decoder then run on each view (``ffcv_ops.views``)
    views = None
    #: its work per sample is a copy of a few bytes (the scalar decoders): a pipeline made of
    #: it alone runs once per batch instead of once per chunk (``Pipeline.whole_batch``), which
    #: spares the worker threads a Python call per chunk
    per_batch = False

    def _too_large(self, what, sizes, limit):
        """A FormatError naming the sample of the largest of ``sizes`` (one per sample), or None
        when none exceeds ``limit``."""
        if limit is None or sizes.size == 0 or int(sizes.max()) <= limit:
            return None
        from ffcv_format import FormatError
        sample = int(np.argmax(sizes))
        return FormatError(f"sample {sample}: its metadata records {what} of {int(sizes[sample])} bytes, more than "
                           f"a page ({limit} bytes) (corrupted file? `ffcv verify FILE` lists every problem)")

    def _require_field(self, *types):
        if self.field is None:
            raise RuntimeError(f"{type(self).__name__} was used before the loader gave it its field")
        if types and not isinstance(self.field, types):
            names = ' or '.join(t.__name__ for t in types)
            raise TypeError(f"{type(self).__name__} decodes {names} fields, "
                            f"the field is a {type(self.field).__name__}")
