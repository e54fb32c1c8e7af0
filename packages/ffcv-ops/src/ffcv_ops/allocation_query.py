"""Memory an operation asks the pipeline to preallocate (FFCV 1.0's ``AllocationQuery``)."""
from dataclasses import dataclass
from typing import Any, Optional, Tuple

__all__ = ['AllocationQuery']


@dataclass(frozen=True)
class AllocationQuery:
    """One sample's output buffer: ``shape`` (no batch dimension), ``dtype``, ``device``.

    The pipeline allocates ``(batch_size, *shape)`` once per ring slot and passes it as the
    ``destination`` argument of the operation's code. ``device=None`` means a numpy array
    in host memory; a ``torch.device`` (or string) means a torch tensor on that device.
    """

    shape: Tuple[int, ...]
    dtype: Any
    device: Optional[Any] = None
