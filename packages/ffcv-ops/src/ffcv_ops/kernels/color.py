"""Random colour jitter of uint8 RGB image batches (in place): brightness, contrast,
saturation. Every float result is clipped to [0, 255] and truncated to uint8."""
import numpy as np
from numba import njit

from .random import sample_key, uniform

# ITU-R 601 luma weights, as FFCV 1.0 (and torchvision's rgb_to_grayscale) use them
_R, _G, _B = 0.2989, 0.587, 0.114


@njit(nogil=True, cache=True, inline='always')
def _to_uint8(value):
    return np.uint8(min(max(value, 0.0), 255.0))


@njit(nogil=True, cache=True, inline='always')
def _gray(r, g, b):
    return np.uint8(_R * r + _G * g + _B * b)


@njit(nogil=True, cache=True)
def jitter_factor(key, p, lo, hi):
    """-1.0 when the sample is left alone (draw 0 of its key is not below ``p``), else its
    factor, uniform in [``lo``, ``hi``) from draw 1."""
    if uniform(key, 0) < p:
        return lo + (hi - lo) * uniform(key, 1)
    return -1.0


@njit(nogil=True, cache=True)
def brightness_inplace(rows, indices, seed, p, lo, hi):
    """``x -> f * x`` for the images drawn; ``rows`` is ``(n, height * width * channels)``."""
    for i in range(rows.shape[0]):
        f = jitter_factor(sample_key(seed, indices[i]), p, lo, hi)
        if f < 0.0:
            continue
        row = rows[i]
        for k in range(row.shape[0]):
            row[k] = _to_uint8(f * row[k])


@njit(nogil=True, cache=True)
def contrast_inplace(pixels, indices, seed, p, lo, hi):
    """``x -> f * x + (1 - f) * m`` for the images drawn, ``m`` the mean of the image's
    (uint8) grayscale; ``pixels`` is ``(n, height * width, 3)``."""
    count = pixels.shape[1]
    for i in range(pixels.shape[0]):
        f = jitter_factor(sample_key(seed, indices[i]), p, lo, hi)
        if f < 0.0:
            continue
        image = pixels[i]
        total = 0
        for k in range(count):
            total += np.int64(_gray(image[k, 0], image[k, 1], image[k, 2]))
        shift = (1.0 - f) * (total / count) if count else 0.0
        for k in range(count):
            for c in range(3):
                image[k, c] = _to_uint8(f * image[k, c] + shift)


@njit(nogil=True, cache=True)
def saturation_inplace(pixels, indices, seed, p, lo, hi):
    """``x -> f * x + (1 - f) * gray`` per pixel for the images drawn, ``gray`` the pixel's
    uint8 grayscale value; ``pixels`` is ``(n, height * width, 3)``."""
    for i in range(pixels.shape[0]):
        f = jitter_factor(sample_key(seed, indices[i]), p, lo, hi)
        if f < 0.0:
            continue
        rest = 1.0 - f
        image = pixels[i]
        for k in range(pixels.shape[1]):
            gray = rest * _gray(image[k, 0], image[k, 1], image[k, 2])
            for c in range(3):
                image[k, c] = _to_uint8(f * image[k, c] + gray)
