"""Random colour jitter of uint8 RGB image batches (in place): brightness, contrast,
saturation. Every result is clipped to [0, 255] and truncated to uint8.

The per-image loops run over flat runs of values (``blend_inplace``, ``gray_total``,
``blend_with_gray_inplace``, also used by ``color_jitter``), in loops that LLVM vectorizes (a
2-D ``(pixels, 3)`` loop with a channel loop inside does not). Their arithmetic is chosen to
be exact and cheap: brightness and contrast as the float64 formula says, in 32-bit integers
where that gives the same byte for all 256 values; the gray level and the saturation blend in
float32, whose results numpy reproduces exactly (see ``gray_level``, ``blend_with_gray_inplace``).
Numba widens every integer product to 64 bits, which halves the lanes; float32 keeps 8 or 16."""
import math

import numpy as np
from numba import njit

from .random import sample_key, uniform

# ITU-R 601 luma weights, as FFCV 1.0 (and torchvision's rgb_to_grayscale) use them, in
# ten-thousandths: 0.2989, 0.587, 0.114
_R, _G, _B = np.float32(2989.0), np.float32(5870.0), np.float32(1140.0)
_HALF = np.float32(0.5)
_TEN_THOUSANDTH = np.float32(1e-4)


@njit(nogil=True, cache=True, inline='always')
def clamp_to_uint8(value):
    """``value`` clipped to [0, 255] and truncated toward zero."""
    return np.uint8(min(max(value, 0.0), 255.0))


@njit(nogil=True, cache=True, inline='always')
def gray_level(r, g, b):
    """``trunc(0.2989 r + 0.587 g + 0.114 b)`` of a pixel's uint8 components, exactly, as a
    float32 holding an integer in 0..254.

    ``s = 2989 r + 5870 g + 1140 b`` is an integer below 2**22, exact in float32, and
    ``floor((s + 0.5) * float32(1e-4))`` is ``s // 10000``: the product's rounding error is
    below 3.1e-5 and ``(s + 0.5) / 10000`` lies at least 5e-5 from an integer (checked over
    all 2**24 colours in the tests). Plain float64 (``0.2989 * r + ...``) is one level low on
    296 colours, whose exact value is an integer."""
    total = _R * np.float32(r) + _G * np.float32(g) + _B * np.float32(b)
    return np.floor((total + _HALF) * _TEN_THOUSANDTH)


@njit(nogil=True, cache=True)
def fixed_point_blend(factor, shift):
    """``(a, b, bits)`` with ``clamp((a * x + b) >> bits, 0, 255) == clamp_to_uint8(factor * x +
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
        if value != clamp_to_uint8(factor * x + shift):
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
            values[k] = clamp_to_uint8(factor * values[k] + shift)


@njit(nogil=True, cache=True)
def gray_total(values):
    """The sum of the uint8 grayscale levels of ``values``, a flat uint8 array of RGB triples."""
    total = 0
    for k in range(values.shape[0] // 3):
        total += np.int64(gray_level(values[3 * k], values[3 * k + 1], values[3 * k + 2]))
    return total


@njit(nogil=True, cache=True)
def blend_with_gray_inplace(values, factor):
    """``x -> clamp(gray + floor(f * (x - gray)))`` over a flat uint8 array of RGB triples,
    ``gray`` the pixel's ``gray_level`` and ``f`` the factor rounded to float32, the product
    computed in float32 (IEEE, so numpy gives the same bytes). Mathematically
    ``f * x + (1 - f) * gray`` truncated; the factor's rounding (relative 6e-8) moves a
    byte by one level now and then (on 1e-5 of the bytes or so)."""
    f = np.float32(factor)
    low, high = np.float32(0.0), np.float32(255.0)
    for k in range(values.shape[0] // 3):
        r, g, b = np.float32(values[3 * k]), np.float32(values[3 * k + 1]), np.float32(values[3 * k + 2])
        gray = gray_level(r, g, b)
        values[3 * k] = np.uint8(min(max(gray + np.floor(f * (r - gray)), low), high))
        values[3 * k + 1] = np.uint8(min(max(gray + np.floor(f * (g - gray)), low), high))
        values[3 * k + 2] = np.uint8(min(max(gray + np.floor(f * (b - gray)), low), high))


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
    """``blend_with_gray_inplace`` (``x -> f * x + (1 - f) * gray`` per pixel) for the images
    drawn; ``pixels`` is ``(n, height * width, 3)``."""
    for i in range(pixels.shape[0]):
        f = jitter_factor(sample_key(seed, indices[i]), p, lo, hi)
        if f < 0.0:
            continue
        image = np.ascontiguousarray(pixels[i])
        blend_with_gray_inplace(image.reshape(-1), f)
        if image.ctypes.data != pixels[i].ctypes.data:      # a strided batch: worked on a copy
            pixels[i] = image
