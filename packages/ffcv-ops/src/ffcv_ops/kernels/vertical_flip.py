"""Mirroring HxWxC image batches top-bottom (in place)."""
from numba import njit

from .random import sample_key, uniform


@njit(nogil=True, cache=True)
def flip_vertical_inplace(rows, height, indices, seed, flip_prob):
    """Reverse the order of the rows of the images whose draw 0 is below ``flip_prob``.

    ``rows`` is ``(n * height, row_words)``: each image row is one contiguous row (of any
    element type: callers view rows of bytes as wider words when the length allows, so
    that fewer, wider elements are swapped).
    """
    for i in range(indices.shape[0]):
        if uniform(sample_key(seed, indices[i]), 0) < flip_prob:
            top = i * height
            for y in range(height // 2):
                upper = rows[top + y]
                lower = rows[top + height - 1 - y]
                for j in range(upper.shape[0]):
                    word = upper[j]
                    upper[j] = lower[j]
                    lower[j] = word
