"""Operations on the views of a multi-view decoder's samples, one view at a time.

A decoder with ``views = V`` (``MultiViewRandomResizedCropRGBImageDecoder``) makes samples
of shape ``(V, height, width, channels)``: V crops of one decoded image. The image
transforms take ``(height, width, channels)`` samples. The pipeline therefore runs each
numpy operation of the parallel part that follows such a decoder on the views as if they
were ``batch * V`` images: the operation declares its state for one view, its buffers get
the views axis back, and its code is called on the chunk flattened to
``(chunk * V, height, width, channels)`` with sample keys ``index * V + v`` -- so every
view of every sample draws its own flip, colours, blur, from (seed, epoch, index, view),
whatever the number of worker threads. Torch operations (after ``ToTensor``) see the
views axis: ``(batch, V, ...)``.
"""
from dataclasses import replace
from typing import Callable, Optional

import numpy as np

from .allocation_query import AllocationQuery
from .state import State

__all__ = ['decoder_views', 'one_view', 'with_views', 'per_view_call']


def decoder_views(decoder) -> Optional[int]:
    """The number of views of ``decoder``'s samples (its ``views`` attribute), or None."""
    views = getattr(decoder, 'views', None)
    if isinstance(views, (int, np.integer)) and not isinstance(views, bool) and views >= 1:
        return int(views)
    return None


def one_view(state: State, views: int, where: str) -> State:
    """``state`` (samples ``(views, ...)``) as one view's state."""
    shape = state.shape
    if shape is None or len(shape) < 1 or shape[0] != views:
        raise ValueError(f"{where}: the decoder makes {views} views per sample, but the data reaching this "
                         f"operation has shape {shape}, not ({views}, ...)")
    return replace(state, shape=tuple(shape[1:]))


def with_views(state: State, allocation, views: int):
    """An operation's (state, allocation) for one view, given back the views axis."""
    if state.shape is not None:
        state = replace(state, shape=(views, *state.shape))
    if allocation is None:
        return state, None
    if isinstance(allocation, (tuple, list)):
        return state, type(allocation)(_query_with_views(q, views) for q in allocation)
    return state, _query_with_views(allocation, views)


def _query_with_views(query: AllocationQuery, views: int) -> AllocationQuery:
    return replace(query, shape=(views, *query.shape))


def _flatten(buffer, count: int):
    if buffer is None:
        return None
    if isinstance(buffer, tuple):
        return tuple(_flatten(b, count) for b in buffer)
    return buffer.reshape((count, *buffer.shape[2:]))


def per_view_call(call: Callable, views: int) -> Callable:
    """``call`` (an operation's uniform call, ``call(inputs, destination, indices, seed)``)
    run on a chunk's views as ``chunk * views`` samples keyed ``index * views + v``.

    The reshapes are views of the batch buffers (their rows are contiguous), so an
    operation working in place still writes into the batch."""
    offsets = np.arange(views, dtype=np.int64)

    def on_each_view(inputs, destination, indices, seed):
        n = inputs.shape[0]
        count = n * views
        keys = (np.asarray(indices, dtype=np.int64)[:, None] * views + offsets).reshape(count)
        out = call(inputs.reshape((count, *inputs.shape[2:])), _flatten(destination, count), keys, seed)
        return out.reshape((n, views, *out.shape[1:]))

    return on_each_view
