"""Crop boxes: random resized crop (Inception-style) and center crop."""
import math

from numba import njit

from .random import sample_key, uniform


@njit(nogil=True, cache=True)
def crop_try(height, width, u_area, u_ratio, u_top, u_left, scale_lo, scale_hi, log_ratio_lo, log_ratio_hi):
    """One try of torchvision's random resized crop from four uniform numbers in [0, 1):
    (top, left, crop_height, crop_width), with crop_height 0 when the box does not fit."""
    target_area = height * width * (scale_lo + (scale_hi - scale_lo) * u_area)
    aspect = math.exp(log_ratio_lo + (log_ratio_hi - log_ratio_lo) * u_ratio)
    w = int(round(math.sqrt(target_area * aspect)))
    h = int(round(math.sqrt(target_area / aspect)))
    if 0 < w <= width and 0 < h <= height:
        return int(u_top * (height - h + 1)), int(u_left * (width - w + 1)), h, w
    return 0, 0, 0, 0


@njit(nogil=True, cache=True)
def central_box_in_ratio(height, width, log_ratio_lo, log_ratio_hi):
    """The fallback of torchvision's rule: the whole image, cut to the nearest aspect ratio
    in range, centred."""
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
def random_resized_crop_box(height, width, key, scale_lo, scale_hi, log_ratio_lo, log_ratio_hi):
    """(top, left, crop_height, crop_width) of a random resized crop, torchvision's rule:
    ten tries at an area in ``scale`` x image area and a log-uniform aspect ratio, then the
    central crop with the ratio clamped into range."""
    for attempt in range(10):
        top, left, h, w = crop_try(height, width, uniform(key, 4 * attempt), uniform(key, 4 * attempt + 1),
                                   uniform(key, 4 * attempt + 2), uniform(key, 4 * attempt + 3),
                                   scale_lo, scale_hi, log_ratio_lo, log_ratio_hi)
        if h > 0:
            return top, left, h, w
    return central_box_in_ratio(height, width, log_ratio_lo, log_ratio_hi)


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
def center_crop_box(height, width, ratio):
    """The central square whose side is ``int(ratio * shorter side)`` (FFCV 1.0's rule: the
    product truncated), at least one pixel: (top, left, side, side)."""
    side = max(1, int(ratio * min(height, width)))
    return (height - side) // 2, (width - side) // 2, side, side


@njit(nogil=True, cache=True)
def center_crop_boxes(heights, widths, ratio, out):
    """``center_crop_box`` of each image."""
    for i in range(heights.shape[0]):
        top, left, h, w = center_crop_box(heights[i], widths[i], ratio)
        out[i, 0] = top
        out[i, 1] = left
        out[i, 2] = h
        out[i, 3] = w
