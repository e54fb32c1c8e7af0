"""torchvision-style colour adjustments of one uint8 image ``(height, width, channels)``, in
place, and the random ``ColorJitter`` of a batch built on them.

The formulas are torchvision's functional ones on uint8 tensors, computed in float64:
blends ``clamp(f * x + (1 - f) * other, 0, 255)`` truncated to uint8, where ``other`` is
black (brightness), the mean of the image's uint8 grayscale (contrast) or each pixel's
uint8 grayscale (saturation); hue goes through HSV with values ``x / 255`` and back as
``trunc(v * (256 - 0.001))``. One-channel images: contrast uses the image's own mean,
saturation and hue leave them unchanged (as torchvision does).

Each image is worked on as one flat run of values (``values_mean``, ``adjust_values``, and
the loops of ``kernels/color.py``), so that LLVM vectorizes the loops: the hue's per-pixel
branches are selects (``rotate_hue_inplace``), and the float operations that decide each
byte are the ones above (checked against the per-pixel ``rgb_to_hsv``/``hsv_to_rgb`` on all
2**24 RGB triples).
"""
import math

import numpy as np
from numba import njit

from .color import blend_inplace, blend_with_gray_inplace, gray_total
from .random import sample_key, uniform

# ITU-R 601 luma weights (torchvision's rgb_to_grayscale)
_R, _G, _B = 0.2989, 0.587, 0.114
#: float -> uint8 as torchvision's convert_image_dtype: multiply by 256 - 0.001 and truncate
_TO_UINT8_SCALE = 255.999

#: the adjustments in ColorJitter's draw order
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


@njit(nogil=True, cache=True, inline='always')
def clamp_to_uint8(value):
    """``value`` clipped to [0, 255] and truncated toward zero."""
    return np.uint8(min(max(value, 0.0), 255.0))


@njit(nogil=True, cache=True, inline='always')
def gray_level(r, g, b):
    """A pixel's uint8 grayscale level (luma, truncated)."""
    return np.uint8(_R * r + _G * g + _B * b)


@njit(nogil=True, cache=True, inline='always')
def _write_back(image, work):
    """Copy ``work`` (``np.ascontiguousarray(image)``) into ``image`` when it is a copy."""
    if work.ctypes.data != image.ctypes.data:
        image[...] = work


@njit(nogil=True, cache=True)
def adjust_brightness(image, factor):
    """``x -> clamp(factor * x)``: a blend with black."""
    work = np.ascontiguousarray(image)
    # factor * x >= 0, so adding 0.0 changes no value
    blend_inplace(work.reshape(-1), factor, 0.0)
    _write_back(image, work)


@njit(nogil=True, cache=True)
def values_mean(values, channels):
    """The mean grayscale level of a flat run of pixels of ``channels`` channels (one: their
    values; more: the grayscale of the first three)."""
    count = values.shape[0] // channels if channels else 0
    if channels == 1:
        total = 0
        for k in range(count):
            total += np.int64(values[k])
    elif channels == 3:
        total = gray_total(values)
    else:
        total = 0
        for k in range(count):
            total += np.int64(gray_level(values[channels * k], values[channels * k + 1],
                                         values[channels * k + 2]))
    if count == 0:
        return 0.0
    return total / count


@njit(nogil=True, cache=True)
def grayscale_mean(image):
    """The mean of the image's uint8 grayscale (of its values when it has one channel)."""
    return values_mean(np.ascontiguousarray(image).reshape(-1), image.shape[2])


@njit(nogil=True, cache=True)
def adjust_contrast(image, factor):
    """``x -> clamp(factor * x + (1 - factor) * m)``, ``m`` the grayscale mean."""
    work = np.ascontiguousarray(image)
    values = work.reshape(-1)
    blend_inplace(values, factor, (1.0 - factor) * values_mean(values, image.shape[2]))
    _write_back(image, work)


@njit(nogil=True, cache=True)
def adjust_saturation(image, factor):
    """``x -> clamp(factor * x + (1 - factor) * gray)`` per pixel (one channel: unchanged)."""
    if image.shape[2] != 3:
        return
    work = np.ascontiguousarray(image)
    blend_with_gray_inplace(work.reshape(-1), factor)
    _write_back(image, work)


@njit(nogil=True, cache=True)
def rgb_to_hsv(r, g, b):
    """(hue in [0, 1), saturation, value) of an RGB colour with components in [0, 1]."""
    high = max(r, max(g, b))
    low = min(r, min(g, b))
    spread = high - low
    if spread == 0.0:
        return 0.0, 0.0, high
    saturation = spread / high
    red_distance = (high - r) / spread
    green_distance = (high - g) / spread
    blue_distance = (high - b) / spread
    if high == r:
        hue = blue_distance - green_distance
    elif high == g:
        hue = 2.0 + red_distance - blue_distance
    else:
        hue = 4.0 + green_distance - red_distance
    # hue / 6 + 1 > 0, where fmod and the floored remainder agree
    return (hue / 6.0 + 1.0) % 1.0, saturation, high


@njit(nogil=True, cache=True)
def hsv_to_rgb(hue, saturation, value):
    """(r, g, b) in [0, 1] of an HSV colour (hue in [0, 1])."""
    scaled = hue * 6.0
    sector_start = math.floor(scaled)
    fraction = scaled - sector_start
    sector = int(sector_start) % 6
    p = min(max(value * (1.0 - saturation), 0.0), 1.0)
    q = min(max(value * (1.0 - saturation * fraction), 0.0), 1.0)
    t = min(max(value * (1.0 - saturation * (1.0 - fraction)), 0.0), 1.0)
    if sector == 0:
        return value, t, p
    if sector == 1:
        return q, value, p
    if sector == 2:
        return p, value, t
    if sector == 3:
        return p, q, value
    if sector == 4:
        return t, p, value
    return value, p, q


@njit(nogil=True, cache=True, inline='always')
def _unit_remainder(x):
    """``x % 1.0`` for finite ``x``: ``x - floor(x)`` is the same number (exact for x >= 0;
    for x < 0 both are the one rounding of ``x + n``, ``n`` the integer that brings it into
    [0, 1]), and it is computed without a call to ``fmod``."""
    return x - math.floor(x)


# error_model='numpy': no divisor is 0 (grey pixels divide by 1.0), and without the check
# for one that Python's model adds to each division the loop vectorizes
@njit(nogil=True, cache=True, error_model='numpy')
def rotate_hue_inplace(values, shift):
    """``adjust_hue`` of a flat run of RGB triples: ``rgb_to_hsv``, the shift and
    ``hsv_to_rgb`` per pixel with the same float64 operations, written without branches
    (each case computed, the right one selected) so that the loop vectorizes."""
    for k in range(values.shape[0] // 3):
        r = values[3 * k] / 255.0
        g = values[3 * k + 1] / 255.0
        b = values[3 * k + 2] / 255.0
        # rgb_to_hsv
        high = max(r, max(g, b))
        low = min(r, min(g, b))
        spread = high - low
        grey = spread == 0.0
        divisor = 1.0 if grey else spread           # grey pixels: hue and saturation are 0
        saturation = 0.0 if grey else spread / high
        # rgb_to_hsv's hue, of which only two distances are used: red highest (first of
        # the tests): blue - green distance, green: 2 + red - blue, blue: 4 + green - red
        # (0.0 + d is d: the red case has the same two operations as the others)
        red_high = high == r
        green_high = (not red_high) and high == g
        first = b if red_high else (r if green_high else g)
        second = g if red_high else (b if green_high else r)
        offset = 0.0 if red_high else (2.0 if green_high else 4.0)
        hue = (offset + (high - first) / divisor) - (high - second) / divisor
        hue = 0.0 if grey else _unit_remainder(hue / 6.0 + 1.0)
        hue = _unit_remainder(hue + shift)
        # hsv_to_rgb
        scaled = hue * 6.0
        sector_start = math.floor(scaled)
        fraction = scaled - sector_start
        sector = int(sector_start)
        sector = 0 if sector == 6 else sector           # int(sector_start) % 6: hue is in [0, 1]
        p = min(max(high * (1.0 - saturation), 0.0), 1.0)
        q = min(max(high * (1.0 - saturation * fraction), 0.0), 1.0)
        t = min(max(high * (1.0 - saturation * (1.0 - fraction)), 0.0), 1.0)
        # sectors 0..5: (v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)
        out_r = high if (sector == 0 or sector == 5) else (q if sector == 1 else (t if sector == 4 else p))
        out_g = t if sector == 0 else (q if sector == 3 else (p if sector >= 4 else high))
        out_b = p if sector <= 1 else (t if sector == 2 else (q if sector == 5 else high))
        values[3 * k] = np.uint8(out_r * _TO_UINT8_SCALE)
        values[3 * k + 1] = np.uint8(out_g * _TO_UINT8_SCALE)
        values[3 * k + 2] = np.uint8(out_b * _TO_UINT8_SCALE)


@njit(nogil=True, cache=True)
def adjust_hue(image, shift):
    """Rotate each pixel's hue by ``shift`` (in turns, [-0.5, 0.5]) through HSV (one
    channel: unchanged): ``rgb_to_hsv``, ``(hue + shift) % 1``, ``hsv_to_rgb``, each
    component ``trunc(v * 255.999)``."""
    if image.shape[2] != 3:
        return
    work = np.ascontiguousarray(image)
    rotate_hue_inplace(work.reshape(-1), shift)
    _write_back(image, work)


@njit(nogil=True, cache=True)
def color_jitter_draws(key, p, ranges, order, factors):
    """One sample's ColorJitter parameters from its ``key``; returns whether it is jittered.

    Draw 0 below ``p``: jittered. Draws 1..3 shuffle ``order`` (``[0, 1, 2, 3]`` then a
    Fisher-Yates pass from the end: position ``j = 3, 2, 1`` swaps with ``floor(u * (j + 1))``).
    Draws 4..7: ``factors[a] = ranges[a, 0] + (ranges[a, 1] - ranges[a, 0]) * u`` for
    brightness, contrast, saturation, hue.
    """
    for a in range(4):
        order[a] = a
    for j in range(3, 0, -1):
        other = min(int(uniform(key, 4 - j) * (j + 1)), j)
        swap = order[j]
        order[j] = order[other]
        order[other] = swap
    for a in range(4):
        factors[a] = ranges[a, 0] + (ranges[a, 1] - ranges[a, 0]) * uniform(key, 4 + a)
    return uniform(key, 0) < p


@njit(nogil=True, cache=True)
def apply_adjustment(image, adjustment, factor):
    """Adjustment number ``adjustment`` (BRIGHTNESS .. HUE) of ``image`` by ``factor``."""
    work = np.ascontiguousarray(image)
    adjust_values(work.reshape(-1), image.shape[2], adjustment, factor)
    _write_back(image, work)


@njit(nogil=True, cache=True)
def adjust_values(values, channels, adjustment, factor):
    """``apply_adjustment`` on the flat values of an image of ``channels`` channels."""
    if adjustment == BRIGHTNESS:
        blend_inplace(values, factor, 0.0)
    elif adjustment == CONTRAST:
        blend_inplace(values, factor, (1.0 - factor) * values_mean(values, channels))
    elif channels != 3:
        return
    elif adjustment == SATURATION:
        blend_with_gray_inplace(values, factor)
    else:
        rotate_hue_inplace(values, factor)


@njit(nogil=True, cache=True)
def color_jitter_inplace(images, indices, seed, p, ranges, enabled):
    """ColorJitter of ``images`` ``(n, height, width, channels)`` uint8, in place.

    ``ranges``: ``(4, 2)`` float64, the (low, high) of the brightness, contrast and
    saturation factors and of the hue shift; ``enabled``: which of the four apply (a
    disabled one keeps its place in the random order and its draw, and does nothing).
    """
    order = np.empty(4, np.int64)
    factors = np.empty(4, np.float64)
    channels = images.shape[3]
    for i in range(images.shape[0]):
        if not color_jitter_draws(sample_key(seed, indices[i]), p, ranges, order, factors):
            continue
        image = np.ascontiguousarray(images[i])
        values = image.reshape(-1)
        for position in range(4):
            adjustment = order[position]
            if enabled[adjustment]:
                adjust_values(values, channels, adjustment, factors[adjustment])
        _write_back(images[i], image)
