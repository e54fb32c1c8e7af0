"""Gaussian blur of HxWxC uint8 image batches (in place), with a separable kernel and
reflect padding."""
import math

import numpy as np
from numba import njit

from .random import sample_key, uniform


@njit(nogil=True, cache=True)
def reflect_index(position, size):
    """``position`` mirrored into ``0 .. size - 1`` about the edge pixels, which are not
    repeated (``-1 -> 1``, ``size -> size - 2``); positions further out keep mirroring
    (period ``2 * (size - 1)``), so kernels wider than the image stay defined. A side of
    one pixel maps everything to 0."""
    if size == 1:
        return 0
    period = 2 * (size - 1)
    position = position % period
    if position < 0:
        position += period
    return position if position < size else period - position


@njit(nogil=True, cache=True)
def gaussian_weights(size, sigma, out):
    """``out[t]`` (``t < size``): ``exp(-x^2 / (2 sigma^2))`` at ``x = t - (size - 1) / 2``,
    normalised to sum to 1."""
    half = (size - 1) * 0.5
    total = 0.0
    for t in range(size):
        x = (t - half) / sigma
        out[t] = math.exp(-0.5 * x * x)
        total += out[t]
    for t in range(size):
        out[t] /= total


@njit(nogil=True, cache=True)
def gaussian_blur_inplace(rows, height, channels, indices, seed, p, size_y, size_x,
                          sigma_lo, sigma_hi):
    """Blur the images whose draw 0 is below ``p`` with a ``size_y`` x ``size_x`` Gaussian
    kernel of standard deviation ``sigma = sigma_lo + (sigma_hi - sigma_lo) * u1`` (draw 1)
    on both axes; borders are reflected (``reflect_index``); results are rounded half up.

    ``rows`` is ``(n * height, width * channels)`` uint8. Separable: each row is padded
    and filtered along x into a float32 scratch image, then the scratch rows are combined
    along y. Both inner loops run along whole rows (vectorised), and use the kernel's
    symmetry (one multiplication for the two taps at the same distance).
    """
    row_length = rows.shape[1]
    width = row_length // channels if channels else 0
    if rows.shape[0] == 0 or row_length == 0:
        return
    half_x, half_y = size_x // 2, size_y // 2
    weights_x = np.empty(size_x, np.float32)
    weights_y = np.empty(size_y, np.float32)
    padded = np.empty((width + 2 * half_x) * channels, np.float32)
    scratch = np.empty((height, row_length), np.float32)
    accumulator = np.empty(row_length, np.float32)
    for i in range(indices.shape[0]):
        key = sample_key(seed, indices[i])
        if not uniform(key, 0) < p:
            continue
        sigma = sigma_lo + (sigma_hi - sigma_lo) * uniform(key, 1)
        gaussian_weights(size_x, sigma, weights_x)
        gaussian_weights(size_y, sigma, weights_y)
        top = i * height
        interior = padded[half_x * channels:half_x * channels + row_length]
        for y in range(height):
            source = rows[top + y]
            for j in range(row_length):         # the row itself: one vectorised copy
                interior[j] = source[j]
            for x in range(half_x):             # the reflected borders
                left, right = reflect_index(x - half_x, width), reflect_index(width + x, width)
                for c in range(channels):
                    padded[x * channels + c] = source[left * channels + c]
                    padded[(width + half_x + x) * channels + c] = source[right * channels + c]
            # views per tap, indexed from 0: the loops vectorise (no index wraparound check);
            # the kernel is symmetric, so taps t and size - 1 - t share one multiplication
            out = scratch[y]
            centre = padded[half_x * channels:half_x * channels + row_length]
            weight = weights_x[half_x]
            for j in range(row_length):
                out[j] = weight * centre[j]
            for t in range(half_x):
                weight = weights_x[t]
                before = padded[t * channels:t * channels + row_length]
                after = padded[(size_x - 1 - t) * channels:(size_x - 1 - t) * channels + row_length]
                for j in range(row_length):
                    out[j] += weight * (before[j] + after[j])
        for y in range(height):
            centre = scratch[y]
            weight = weights_y[half_y]
            for j in range(row_length):
                accumulator[j] = weight * centre[j]
            for t in range(half_y):
                weight = weights_y[t]
                above = scratch[reflect_index(y + t - half_y, height)]
                below = scratch[reflect_index(y + half_y - t, height)]
                for j in range(row_length):
                    accumulator[j] += weight * (above[j] + below[j])
            target = rows[top + y]
            for j in range(row_length):
                target[j] = np.uint8(min(max(accumulator[j], 0.0), 255.0) + 0.5)
