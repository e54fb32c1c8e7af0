"""Erasing rectangles of HxWxC uint8 image batches (in place): cutout squares drawn with a
probability, and random erasing (Zhong et al., 2017) with normally distributed fills."""
import math
import statistics

import numpy as np
from numba import njit

from .random import GOLDEN, mix64, sample_key, standard_normal, uniform


@njit(nogil=True, cache=True, inline='always')
def _to_uint8_rounded(value):
    """``value`` clipped to [0, 255] and rounded half up."""
    return np.uint8(math.floor(min(max(value, 0.0), 255.0) + 0.5))


#: noise values per 64-bit hash: four 16-bit quarters, each giving a 12-bit table index
_NOISE_PER_WORD = 4
_NOISE_TABLE_BITS = 12


def normal_quantile_table(bits=_NOISE_TABLE_BITS):
    """The ``2**bits`` standard normal quantiles at the midpoints ``(i + 0.5) / 2**bits``
    (``statistics.NormalDist().inv_cdf``; the lower half the negated upper half, so that
    their mean is 0), divided by their root mean square, so that their variance is 1."""
    size = 1 << bits
    normal = statistics.NormalDist()
    upper = [normal.inv_cdf((i + 0.5) / size) for i in range(size // 2, size)]
    table = np.array([-q for q in reversed(upper)] + upper, np.float64)
    return table / math.sqrt(float(np.mean(table * table)))


#: the values of the noise fill: a uniform pick among these 4096 numbers is a discretised
#: standard normal (mean 0, variance 1, |z| < 3.67)
NORMAL_QUANTILES = normal_quantile_table()


@njit(nogil=True, cache=True)
def noise_indices(key, k, indices, count):
    """``indices[:count]`` = table indices of the noise values ``0 .. count - 1`` of a
    rectangle, from the 64-bit hashes ``w_j = mix64(key + (k + j + 1) * golden)`` (the words
    that ``uniform(key, k + j)`` takes its 53 bits from): value ``t`` is bits ``4 .. 15`` of
    quarter ``t % 4`` of ``w_{t // 4}``, ``(w >> (16 * (t % 4) + 4)) & 4095``. Returns the next
    counter, ``k + ceil(count / 4)``; ``indices`` holds at least ``count + 3`` numbers."""
    words = (count + _NOISE_PER_WORD - 1) // _NOISE_PER_WORD
    start = np.uint64(key) + np.uint64(k + 1) * GOLDEN
    mask = np.uint64((1 << _NOISE_TABLE_BITS) - 1)
    for j in range(words):
        word = mix64(start + np.uint64(j) * GOLDEN)
        indices[4 * j] = np.uint16((word >> np.uint64(4)) & mask)
        indices[4 * j + 1] = np.uint16((word >> np.uint64(20)) & mask)
        indices[4 * j + 2] = np.uint16((word >> np.uint64(36)) & mask)
        indices[4 * j + 3] = np.uint16((word >> np.uint64(52)) & mask)
    return k + words


@njit(nogil=True, cache=True)
def noise_fill_levels(fill_mean, fill_std, quantiles):
    """``(channels, len(quantiles))`` uint8: ``fill_mean[c] + fill_std[c] * z`` clipped and
    rounded for each channel ``c`` and table value ``z`` (the noise fill's bytes: a noise
    value is a look-up)."""
    levels = np.empty((fill_mean.shape[0], quantiles.shape[0]), np.uint8)
    for c in range(fill_mean.shape[0]):
        for i in range(quantiles.shape[0]):
            levels[c, i] = _to_uint8_rounded(fill_mean[c] + fill_std[c] * quantiles[i])
    return levels


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
    fill_std[c] * z``, ``z`` (nearly) standard normal, clipped and rounded to uint8.
    ``fast_fill``: one ``z`` per channel of the rectangle (a flat colour; Box-Muller,
    ``standard_normal``); otherwise one per pixel and channel (noise), taken row by row,
    pixel by pixel, channel by channel, each ``z`` one of the 4096 ``NORMAL_QUANTILES``
    picked by 12 hashed bits (``noise_indices``: four values per draw), so that a noise
    value costs a quarter of a hash and a byte look-up (``noise_fill_levels``).
    """
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    # the noise of one rectangle (at most the whole image, and a last word's spares)
    noise = np.empty(0 if fast_fill else height * width * channels + _NOISE_PER_WORD - 1, np.uint16)
    levels = noise_fill_levels(fill_mean, fill_std, NORMAL_QUANTILES[:0] if fast_fill else NORMAL_QUANTILES)
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
                k = noise_indices(key, k, noise, h * w * channels)
                t = 0
                for y in range(top, top + h):
                    for x in range(left, left + w):
                        for c in range(channels):
                            images[i, y, x, c] = levels[c, noise[t]]
                            t += 1
