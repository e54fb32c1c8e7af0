"""What the transforms take: checks of the previous state with errors naming the operation."""
import numpy as np


def require_images(op, state):
    """``state`` must be numpy image batches ``(height, width, channels)`` (before ToTensor)."""
    if not state.jit_mode or state.shape is None or len(state.shape) != 3:
        views = ("; data of several views (a multi-view decoder's) reaches only the operations of the "
                 "worker threads one view at a time, not one that works on the whole batch"
                 if state.jit_mode and state.shape is not None and len(state.shape) == 4 else "")
        raise ValueError(f"{type(op).__name__} works on numpy image batches (height, width, channels) "
                         f"before ToTensor; it got data of shape {state.shape} "
                         f"({'numpy' if state.jit_mode else 'torch'}){views}")


def require_labels(op, state):
    """``state`` must be integer label batches ``(batch, 1)`` before ToTensor (IntDecoder's output)."""
    shape, dtype = state.shape, state.dtype
    if not state.jit_mode or shape is None or tuple(shape) != (1,) or np.dtype(dtype).kind not in 'iu':
        raise ValueError(f"{type(op).__name__} works on integer label batches (batch, 1) before ToTensor "
                         f"(IntDecoder's output); it got data of shape {shape} and type {dtype} "
                         f"({'numpy' if state.jit_mode else 'torch'})")


def probability(op_name: str, argument: str, value) -> float:
    """``value`` as a float in [0, 1], or a ``ValueError`` naming the operation and argument."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float('nan')
    if not 0 <= number <= 1:
        raise ValueError(f"{op_name} {argument} must be a probability in [0, 1], got {value!r}")
    return number
