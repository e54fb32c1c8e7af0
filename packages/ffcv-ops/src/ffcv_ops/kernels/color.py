"""Random colour jitter of uint8 RGB image batches (in place): brightness, contrast,
saturation. Every float result is clipped to [0, 255] and truncated to uint8.

The per-image loops run over flat runs of values (``blend_inplace``, ``gray_total``,
``blend_with_gray_inplace``, also used by ``color_jitter``): the same float64 operations per
value as the formulas say (or, for ``blend_inplace``, integer ones checked to give the same
bytes), in loops that LLVM vectorizes (a 2-D ``(pixels, 3)`` loop with a
channel loop inside does not)."""
import math

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
def fixed_point_blend(factor, shift):
    """``(a, b, bits)`` with ``clamp((a * x + b) >> bits, 0, 255) == _to_uint8(factor * x +
    shift)`` for every x in 0..255 (checked here, all 256), and ``|a * x + b| < 2**31``;
    ``bits`` is 0 when the nearest such form misses one x (about 1 call in 300: ``factor * x
    + shift`` lands within ~1e-5 of an integer)."""
    span = 256.0 * factor + abs(shift) + 2.0
    if not span < 2.0 ** 30:
        return 0, 0, 0
    bits = 30 - int(math.ceil(math.log2(span)))
    scale = 2.0 ** bits
    a = int(math.floor(factor * scale + 0.5))
    b = int(math.floor(shift * scale + 0.5))
    for x in range(256):
        value = (a * x + b) >> bits
        value = 0 if value < 0 else (255 if value > 255 else value)
        if value != _to_uint8(factor * x + shift):
            return 0, 0, 0
    return a, b, bits


@njit(nogil=True, cache=True)
def blend_inplace(values, factor, shift):
    """``x -> clamp(factor * x + shift)`` truncated to uint8, over a flat uint8 array.

    In 32-bit integers when ``fixed_point_blend`` finds a form that gives the same byte for
    every byte (twice as fast as float64: more lanes, no conversions), else in float64."""
    a, b, bits = fixed_point_blend(factor, shift)
    if bits > 0:
        a, b, bits = np.int32(a), np.int32(b), np.int32(bits)
        for k in range(values.shape[0]):
            value = (np.int32(values[k]) * a + b) >> bits
            values[k] = np.uint8(0 if value < 0 else (255 if value > 255 else value))
    else:
        for k in range(values.shape[0]):
            values[k] = _to_uint8(factor * values[k] + shift)


@njit(nogil=True, cache=True)
def gray_total(values):
    """The sum of the uint8 grayscale levels of ``values``, a flat uint8 array of RGB triples."""
    total = 0
    for k in range(values.shape[0] // 3):
        total += np.int64(_gray(values[3 * k], values[3 * k + 1], values[3 * k + 2]))
    return total


@njit(nogil=True, cache=True)
def blend_with_gray_inplace(values, factor):
    """``x -> clamp(factor * x + (1 - factor) * gray)`` truncated to uint8, ``gray`` the uint8
    grayscale level of x's pixel, over a flat uint8 array of RGB triples."""
    rest = 1.0 - factor
    for k in range(values.shape[0] // 3):
        r, g, b = values[3 * k], values[3 * k + 1], values[3 * k + 2]
        gray = rest * _gray(r, g, b)
        values[3 * k] = _to_uint8(factor * r + gray)
        values[3 * k + 1] = _to_uint8(factor * g + gray)
        values[3 * k + 2] = _to_uint8(factor * b + gray)


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
        blend_inplace(rows[i], f, 0.0)


@njit(nogil=True, cache=True)
def contrast_inplace(pixels, indices, seed, p, lo, hi):
    """``x -> f * x + (1 - f) * m`` for the images drawn, ``m`` the mean of the image's
    (uint8) grayscale; ``pixels`` is ``(n, height * width, 3)``."""
    count = pixels.shape[1]
    for i in range(pixels.shape[0]):
        f = jitter_factor(sample_key(seed, indices[i]), p, lo, hi)
        if f < 0.0:
            continue
        image = np.ascontiguousarray(pixels[i])
        values = image.reshape(-1)
        shift = (1.0 - f) * (gray_total(values) / count) if count else 0.0
        blend_inplace(values, f, shift)
        if image.ctypes.data != pixels[i].ctypes.data:      # a strided batch: worked on a copy
            pixels[i] = image


@njit(nogil=True, cache=True)
def saturation_inplace(pixels, indices, seed, p, lo, hi):
    """``x -> f * x + (1 - f) * gray`` per pixel for the images drawn, ``gray`` the pixel's
    uint8 grayscale value; ``pixels`` is ``(n, height * width, 3)``."""
    for i in range(pixels.shape[0]):
        f = jitter_factor(sample_key(seed, indices[i]), p, lo, hi)
        if f < 0.0:
            continue
        image = np.ascontiguousarray(pixels[i])
        blend_with_gray_inplace(image.reshape(-1), f)
        if image.ctypes.data != pixels[i].ctypes.data:      # a strided batch: worked on a copy
            pixels[i] = image
