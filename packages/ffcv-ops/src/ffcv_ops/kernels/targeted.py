"""Edits of chosen samples (listed by index, sorted): poisoning images, replacing labels."""
import numpy as np
from numba import njit


@njit(nogil=True, cache=True, inline='always')
def is_listed(sorted_targets, index):
    """Whether ``index`` is in the sorted array ``sorted_targets`` (binary search)."""
    position = np.searchsorted(sorted_targets, index)
    return position < sorted_targets.shape[0] and sorted_targets[position] == index


@njit(nogil=True, cache=True)
def poison_inplace(rows, indices, targets, keep, overlay, lo, hi):
    """For the listed samples: ``x -> clip(float32(x) * keep + overlay, lo, hi)`` in float32,
    stored in ``rows``' type (integers truncated toward zero).

    ``rows`` is ``(n, height * width * channels)``; ``keep`` (``1 - alpha``) and ``overlay``
    (``mask * alpha``) are float32 rows of one image's length; ``lo``, ``hi`` float32."""
    for i in range(rows.shape[0]):
        if not is_listed(targets, indices[i]):
            continue
        row = rows[i]
        for k in range(row.shape[0]):
            value = np.float32(row[k]) * keep[k] + overlay[k]
            row[k] = min(max(value, lo), hi)


@njit(nogil=True, cache=True)
def replace_labels_inplace(labels, indices, targets, new_label):
    """``labels[i, :] = new_label`` for the listed samples."""
    for i in range(labels.shape[0]):
        if is_listed(targets, indices[i]):
            for k in range(labels.shape[1]):
                labels[i, k] = new_label
