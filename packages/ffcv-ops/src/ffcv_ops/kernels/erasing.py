"""Erasing rectangles of HxWxC uint8 image batches (in place): cutout squares drawn with a
probability, and random erasing (Zhong et al., 2017) with normally distributed fills."""
import math

import numpy as np
from numba import njit

from .random import _GOLDEN, _S11, mix64, sample_key, standard_normal, uniform


@njit(nogil=True, cache=True, inline='always')
def _to_uint8_rounded(value):
    """``value`` clipped to [0, 255] and rounded half up."""
    return np.uint8(math.floor(min(max(value, 0.0), 255.0) + 0.5))


_TWO_PI = 2.0 * math.pi
#: random.uniform's scale from 53 bits to [0, 1)
_UNIT = 1.0 / 9007199254740992.0


@njit(nogil=True, cache=True, inline='always')
def normal_pair(key, k):
    """Two independent N(0, 1) numbers from uniforms ``k`` and ``k + 1`` of ``key`` (both
    halves of Box-Muller: the first is ``standard_normal(key, k)``'s value); returns
    ``(z0, z1, k + 2)``."""
    radius = math.sqrt(-2.0 * math.log(1.0 - uniform(key, k)))
    angle = _TWO_PI * uniform(key, k + 1)
    return radius * math.cos(angle), radius * math.sin(angle), k + 2


@njit(nogil=True, cache=True)
def normal_fill(key, k, values, count):
    """``values[:count]`` = the ``count`` N(0, 1) numbers that ``normal_pair`` gives from
    uniforms ``k, k + 1, ...`` of ``key``, both of each pair in turn (a last spare is
    dropped); returns the next counter. ``values`` holds at least ``count + 1`` numbers.

    The same operations as ``normal_pair``, in two passes: the uniforms first (a loop of
    integer hashing that vectorizes), then the logarithms, square roots and cosines and
    sines, one pair after another."""
    pairs = (count + 1) // 2
    # uniform(key, k + j) hashes key + (k + j + 1) * golden: the step is an addition
    start = np.uint64(key) + np.uint64(k + 1) * _GOLDEN
    for j in range(2 * pairs):
        values[j] = np.float64(mix64(start + np.uint64(j) * _GOLDEN) >> _S11) * _UNIT
    for j in range(pairs):
        radius = math.sqrt(-2.0 * math.log(1.0 - values[2 * j]))
        angle = _TWO_PI * values[2 * j + 1]
        values[2 * j] = radius * math.cos(angle)
        values[2 * j + 1] = radius * math.sin(angle)
    return k + 2 * pairs


@njit(nogil=True, cache=True)
def random_cutout_inplace(images, indices, seed, prob, size, fill):
    """In the images whose draw 0 is below ``prob``: fill a ``size`` x ``size`` square
    centred at pixel ``(int(u1 * height), int(u2 * width))`` (draws 1 and 2), clipped at
    the borders, with ``fill`` (a value per channel). The square spans
    ``centre - size // 2 .. centre - size // 2 + size - 1`` on each axis."""
    height, width = images.shape[1], images.shape[2]
    half = size // 2
    for i in range(indices.shape[0]):
        key = sample_key(seed, indices[i])
        if not uniform(key, 0) < prob:
            continue
        cy = int(uniform(key, 1) * height)
        cx = int(uniform(key, 2) * width)
        y0, y1 = max(0, cy - half), min(height, cy - half + size)
        x0, x1 = max(0, cx - half), min(width, cx - half + size)
        for y in range(y0, y1):
            for x in range(x0, x1):
                for c in range(images.shape[3]):
                    images[i, y, x, c] = fill[c]


@njit(nogil=True, cache=True)
def erasing_rectangle(key, k, height, width, area, log_aspect_lo, log_aspect_hi):
    """One rectangle of random erasing from uniforms ``k .. k + 3`` of ``key``.

    ``area`` is the rectangle's area in pixels; its aspect (height / width) is
    ``exp(uniform(log_aspect_lo, log_aspect_hi))`` (draw ``k``); its sides are
    ``round(sqrt(area * aspect))`` and ``round(sqrt(area / aspect))`` clipped to
    ``1 .. height`` and ``1 .. width``; its top-left corner is uniform among the positions
    where it fits (draws ``k + 1``, ``k + 2``). Returns ``(top, left, h, w, k + 3)``.
    """
    aspect = math.exp(log_aspect_lo + (log_aspect_hi - log_aspect_lo) * uniform(key, k))
    h = min(height, max(1, int(math.floor(math.sqrt(area * aspect) + 0.5))))
    w = min(width, max(1, int(math.floor(math.sqrt(area / aspect) + 0.5))))
    top = min(int(uniform(key, k + 1) * (height - h + 1)), height - h)
    left = min(int(uniform(key, k + 2) * (width - w + 1)), width - w)
    return top, left, h, w, k + 3


@njit(nogil=True, cache=True)
def random_erasing_inplace(images, indices, seed, prob, min_area, max_area, log_aspect_lo,
                           log_aspect_hi, max_count, fill_mean, fill_std, fast_fill):
    """Random erasing of the images whose draw 0 is below ``prob``.

    Per image, all from the sample's key in this order: draw 1 picks the number of
    rectangles, uniform in ``1 .. max_count``; then per rectangle a fraction of the image's
    area uniform in [``min_area``, ``max_area``) divided by the count (one draw), the
    rectangle (``erasing_rectangle``, three draws) and its fill: ``fill_mean[c] +
    fill_std[c] * z``, ``z`` standard normal (two draws each), clipped and rounded to uint8.
    ``fast_fill``: one ``z`` per channel of the rectangle (a flat colour); otherwise one per
    pixel and channel (noise), taken row by row, pixel by pixel, channel by channel from
    ``normal_pair`` (both numbers of a pair in turn; a rectangle's last spare is dropped:
    ``normal_fill``).
    """
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    # the noise of one rectangle (at most the whole image, and a pair's spare)
    noise = np.empty(0 if fast_fill else height * width * channels + 1, np.float64)
    for i in range(indices.shape[0]):
        key = sample_key(seed, indices[i])
        if not uniform(key, 0) < prob:
            continue
        count = 1 + min(int(uniform(key, 1) * max_count), max_count - 1)
        k = 2
        for _ in range(count):
            fraction = min_area + (max_area - min_area) * uniform(key, k)
            area = fraction * height * width / count
            top, left, h, w, k = erasing_rectangle(key, k + 1, height, width, area,
                                                   log_aspect_lo, log_aspect_hi)
            if fast_fill:
                for c in range(channels):
                    z, k = standard_normal(key, k)
                    value = _to_uint8_rounded(fill_mean[c] + fill_std[c] * z)
                    for y in range(top, top + h):
                        for x in range(left, left + w):
                            images[i, y, x, c] = value
            else:
                k = normal_fill(key, k, noise, h * w * channels)
                t = 0
                for y in range(top, top + h):
                    for x in range(left, left + w):
                        for c in range(channels):
                            images[i, y, x, c] = _to_uint8_rounded(fill_mean[c] + fill_std[c] * noise[t])
                            t += 1
