"""Crop boxes: random resized crop (Inception-style) and center crop."""
import math

from numba import njit

from .random import sample_key, uniform


@njit(nogil=True, cache=True)
def random_resized_crop_box(height, width, key, scale_lo, scale_hi, log_ratio_lo, log_ratio_hi):
    """(top, left, crop_height, crop_width) of a random resized crop, torchvision's rule:
    ten tries at an area in ``scale`` x image area and a log-uniform aspect ratio, then the
    central crop with the ratio clamped into range."""
    area = height * width
    for attempt in range(10):
        target_area = area * (scale_lo + (scale_hi - scale_lo) * uniform(key, 4 * attempt))
        aspect = math.exp(log_ratio_lo + (log_ratio_hi - log_ratio_lo) * uniform(key, 4 * attempt + 1))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(uniform(key, 4 * attempt + 2) * (height - h + 1))
            left = int(uniform(key, 4 * attempt + 3) * (width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < math.exp(log_ratio_lo):
        w = width
        h = int(round(w / math.exp(log_ratio_lo)))
    elif in_ratio > math.exp(log_ratio_hi):
        h = height
        w = int(round(h * math.exp(log_ratio_hi)))
    else:
        w = width
        h = height
    h = max(1, min(h, height))
    w = max(1, min(w, width))
    return (height - h) // 2, (width - w) // 2, h, w


@njit(nogil=True, cache=True)
def random_resized_crop_boxes(heights, widths, indices, seed, scale_lo, scale_hi,
                              log_ratio_lo, log_ratio_hi, out):
    """Boxes for a batch: ``out[i] = (top, left, height, width)`` of sample ``indices[i]``."""
    for i in range(indices.shape[0]):
        key = sample_key(seed, indices[i])
        t, l, h, w = random_resized_crop_box(heights[i], widths[i], key, scale_lo, scale_hi,
                                             log_ratio_lo, log_ratio_hi)
        out[i, 0] = t
        out[i, 1] = l
        out[i, 2] = h
        out[i, 3] = w


@njit(nogil=True, cache=True)
def center_crop_boxes(heights, widths, ratio, out):
    """Square central crops whose side is ``ratio`` x the shorter side."""
    for i in range(heights.shape[0]):
        side = max(1, int(round(ratio * min(heights[i], widths[i]))))
        side = min(side, heights[i], widths[i])
        out[i, 0] = (heights[i] - side) // 2
        out[i, 1] = (widths[i] - side) // 2
        out[i, 2] = side
        out[i, 3] = side
