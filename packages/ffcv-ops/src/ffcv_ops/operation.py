"""The Operation protocol (FFCV 1.0's ``ffcv.pipeline.operation.Operation``).

An operation is one step of a field's pipeline. The pipeline asks it, once per epoch, how
the data looks after it (``declare_state_and_memory``), preallocates the output buffer it
asks for, and calls the function returned by ``generate_code`` once per batch (or per part
of a batch, see below) as ``code(inputs, destination)``. Code that takes a third and a
fourth parameter also receives the batch's sample indices and a 64-bit seed for the
operation at this epoch (see ``ffcv_ops.kernels.random``): random operations that draw
from ``(seed, sample index)`` give the same result whatever the number of worker threads.

A decoder is the first operation of a pipeline: it receives
``code(batch_indices, destination, metadata, storage_state)`` and reads its samples with
``self.memory_read(ptr, storage_state)``.

Example (FFCV 1.0 style, runs unchanged)::

    class AddOne(Operation):
        def generate_code(self):
            parallel_range = Compiler.get_iterator()
            def add_one(inputs, dst):
                for i in parallel_range(inputs.shape[0]):
                    dst[i] = inputs[i] + 1
                return dst
            return add_one

        def declare_state_and_memory(self, previous_state):
            return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)
"""
from abc import ABC, abstractmethod
from typing import Callable, Optional, Tuple

from .allocation_query import AllocationQuery
from .state import State

__all__ = ['Operation']


class Operation(ABC):
    """Base class of decoders and transforms.

    Class attributes a subclass may set:

    - ``is_parallel``: ``True`` if samples are processed independently, so that worker
      threads may each run a part of the batch through the code; ``False`` if the code
      needs the whole batch at once (e.g. mixing samples). Left ``None``, it is ``True``
      exactly when ``generate_code`` loops with ``Compiler.get_iterator()`` (FFCV 1.0
      ran such loops in parallel, so their iterations are independent).
    - ``compiled``: ``False`` if the code must run as Python (e.g. it calls OpenCV or
      torch); left ``None``, code is compiled with numba when the output state has
      ``jit_mode=True``.
    - ``random_stream``: a name; operations with the same name receive the same seed
      (from the loader's seed and the epoch alone), wherever they are in a loader's
      pipelines, so that they draw the same numbers for the same sample (``ImageMixup``
      and ``LabelMixup`` pair samples alike). Left ``None``, an operation's seed also
      depends on its pipeline and position.
    """

    is_parallel: Optional[bool] = None
    compiled: Optional[bool] = None
    random_stream: Optional[str] = None
    metadata = None
    memory_read = None
    field = None

    def __init__(self):
        self.metadata = None
        self.memory_read = None

    def accept_field(self, field):
        """Called on a pipeline's decoder with the file's field object."""
        self.field = field

    def accept_globals(self, metadata, memory_read):
        """Called on a pipeline's decoder with its field's metadata column and the reader."""
        self.metadata = metadata
        self.memory_read = memory_read

    @abstractmethod
    def generate_code(self) -> Callable:
        """The function that processes a batch: ``code(inputs, destination[, indices[, seed]])``."""

    @abstractmethod
    def declare_state_and_memory(self, previous_state: State) -> Tuple[State, Optional[AllocationQuery]]:
        """The state after this operation, and the output memory it needs (or ``None``)."""

    def declare_shared_memory(self, previous_state: State) -> Optional[AllocationQuery]:
        """FFCV 1.0's shared memory: a second buffer per batch, set up by the function
        ``generate_code_for_shared_state()`` returns and passed to the code after the
        others. None (the default): no shared memory."""
        return None

    def generate_code_for_shared_state(self) -> Optional[Callable]:
        """FFCV 1.0's: ``init(shared_memory)``, run on the shared memory before each batch."""
        return None

    def __repr__(self):
        return f"{type(self).__name__}()"
