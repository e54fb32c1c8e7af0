"""What every decoder shares."""
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

    def _require_field(self, *types):
        if self.field is None:
            raise RuntimeError(f"{type(self).__name__} was used before the loader gave it its field")
        if types and not isinstance(self.field, types):
            names = ' or '.join(t.__name__ for t in types)
            raise TypeError(f"{type(self).__name__} decodes {names} fields, "
                            f"the field is a {type(self.field).__name__}")
