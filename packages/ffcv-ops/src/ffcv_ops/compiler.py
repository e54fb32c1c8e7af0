"""Compiling operations' code with numba (FFCV 1.0's ``Compiler``)."""
import numba
from numba import prange

__all__ = ['Compiler']


class Compiler:
    """Process-wide switches for how operation code is compiled.

    ``Compiler.set_enabled(False)`` runs every operation as plain Python (for debugging with
    pdb or prints; slow). ``Compiler.get_iterator()`` is what an operation's batch loop
    iterates with: operations that use it declare that the iterations are independent, so
    the pipeline splits their batch across worker threads.
    """

    is_enabled = True
    #: worker threads of loaders given ``num_workers=-1`` (``None``: one per core)
    num_threads = None
    # set while an operation's generate_code() runs; see Operation.uses_batch_iterator
    _iterator_requested = False

    @classmethod
    def set_enabled(cls, enabled):
        cls.is_enabled = bool(enabled)

    @classmethod
    def set_num_threads(cls, n):
        """Worker threads of loaders created afterwards when they are given ``num_workers=-1``."""
        if n < 1:
            raise ValueError(f"the number of threads must be at least 1, got {n}")
        cls.num_threads = int(n)

    @classmethod
    def compile(cls, code, signature=None):
        """``code`` compiled with numba (nopython, GIL released), or as is when disabled."""
        if not cls.is_enabled:
            return getattr(code, 'py_func', code)
        if isinstance(code, numba.core.registry.CPUDispatcher):
            return code
        options = dict(nogil=True, error_model='numpy')
        if signature is not None:
            return numba.njit(signature, **options)(code)
        return numba.njit(**options)(code)

    @classmethod
    def get_iterator(cls):
        """The loop construct for a batch: ``prange`` when compiled, ``range`` otherwise.

        Each worker thread runs a contiguous part of the batch through the loop, so the
        compiled code itself is serial (numba treats ``prange`` as ``range`` outside
        ``parallel=True``), and no numba threading layer is involved.
        """
        cls._iterator_requested = True
        return prange if cls.is_enabled else range
