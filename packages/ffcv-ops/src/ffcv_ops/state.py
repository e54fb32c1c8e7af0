"""What flows between two operations of a pipeline (FFCV 1.0's ``State``)."""
from dataclasses import dataclass, replace
from typing import Any, Optional, Tuple

__all__ = ['State', 'replace']


@dataclass(frozen=True)
class State:
    """The description of one sample's data after an operation.

    ``jit_mode``: the data is a numpy array that the next operation's code may be compiled
    with numba for (``False`` once it is a torch tensor). ``device``: where it lives
    (``None`` or a ``torch.device``). ``shape``/``dtype``: one sample's shape (no batch
    dimension) and element type (numpy or torch dtype).

    Operations return a new state with ``dataclasses.replace(previous_state, shape=...)``.
    """

    jit_mode: bool = True
    device: Any = None
    shape: Optional[Tuple[int, ...]] = None
    dtype: Any = None
