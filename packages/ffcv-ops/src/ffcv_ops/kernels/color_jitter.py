"""torchvision-style colour adjustments of one uint8 image ``(height, width, channels)``, in
place, and the random ``ColorJitter`` of a batch built on them.

Brightness, contrast and saturation are torchvision's functional formulas on uint8 tensors:
blends ``clamp(f * x + (1 - f) * other, 0, 255)`` truncated to uint8, where ``other`` is
black (brightness), the mean of the image's uint8 grayscale (contrast) or each pixel's uint8
grayscale (saturation), in float64 for brightness and contrast and in float32 for saturation
(``kernels/color.py`` says exactly how). Hue is torchvision's HSV round trip (values
``x / 255``, back as ``trunc(v * (256 - 0.001))``) computed exactly in integers, with the
shift rounded down to a step of 1/49152 turn (``rotate_hue_inplace``): a byte differs from
torchvision's float64 result by at most one level, on under 0.5% of bytes. One-channel
images: contrast uses the image's own mean, saturation and hue leave them unchanged (as
torchvision does). ``rgb_to_hsv``/``hsv_to_rgb`` are torchvision's per-pixel float
definitions, kept for reference.

Each image is worked on as one flat run of values (``values_mean``, ``adjust_values``, and
the loops of ``kernels/color.py``), so that LLVM vectorizes the loops: the hue's per-pixel
branches are selects, in int32 (``rotate_hue_inplace``).
"""
import math

import numpy as np
from numba import njit

from .color import blend_inplace, blend_with_gray_inplace, gray_level, gray_total
from .random import sample_key, uniform

#: the adjustments in ColorJitter's draw order
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


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


#: the hue shift is taken in steps of 1 / (6 * 2**HUE_SHIFT_BITS) turn (1/49152)
HUE_SHIFT_BITS = 13
_HUE_STEPS = 6 << HUE_SHIFT_BITS
_HUE_FRACTION_MASK = (1 << HUE_SHIFT_BITS) - 1


@njit(nogil=True, cache=True)
def hue_shift_steps(shift):
    """``shift`` (turns) modulo 1, rounded down to a whole number of steps of
    ``1 / (6 * 2**HUE_SHIFT_BITS)`` turn: an integer in ``[0, 6 * 2**HUE_SHIFT_BITS)``."""
    turns = shift - math.floor(shift)
    return min(int(math.floor(turns * _HUE_STEPS)), _HUE_STEPS - 1)


@njit(nogil=True, cache=True)
def rotate_hue_inplace(values, shift):
    """``adjust_hue`` of a flat run of RGB triples, in integers: exact, given the shift
    rounded down to a step of ``1 / (6 * 2**13)`` turn (``hue_shift_steps``).

    torchvision's HSV round trip keeps each pixel's highest and lowest component and moves
    only the middle one. With ``d = high - low``, the hue in sectors (``6 * hue``) is
    ``H / d`` with ``H`` an integer in ``[0, 6 * d)`` (``rgb_to_hsv``'s cases, in its
    order: red highest ``g - b``, wrapped; green ``2d + b - r``; blue ``4d + r - g``);
    after the shift ``X = H + d * 6 * shift`` modulo ``6 * d``, the sector is
    ``floor(X / d)``, ``rest = X - sector * d``, and the middle component is
    ``m = low + rest`` in even sectors, ``high - rest`` in odd ones (``hsv_to_rgb``'s
    ``t`` and ``q``; its ``v`` and ``p`` are ``high`` and ``low``). With the shift in steps
    of ``2**-13`` sector, ``X * 2**13`` is an integer, and the stored byte
    ``trunc(m * 255.999 / 255)`` is decided exactly: ``floor(m)``, plus one where
    ``85000 * frac(m) * 2**13 + 333 * m * 2**13 >= 85000 * 2**13`` (255.999 / 255 =
    1 + 333 / 85000); ``high`` and ``low`` are stored as they are (``trunc(n * 255.999 /
    255) == n``), and grey pixels stay as they are.

    Against torchvision's float64 formula: the shift's rounding moves ``m`` by less than
    ``d / 2**13 < 0.032`` of a level, so a byte is at most one level off, and rarely (under
    0.5% of bytes over all 2**24 colours at the shifts tried; the tests hold it to 1%).

    The sector and rest come from the case (which component is highest, and the sign of the
    difference of the other two: ``H``'s sector and a rest in ``[0, d]``), then the shift's
    whole sectors and its part of a sector (one carry), so that there is no division; each
    case is computed and the right one selected, so that the loop vectorizes.
    """
    # every result is wrapped in int32 (numba types int32 arithmetic as int64): twice the
    # lanes a vector, and no value leaves int32 (x < 2 * 255 * 2**13; the sum of products
    # below is < 1.4e9 < 2**31)
    steps = hue_shift_steps(shift)
    whole_sectors = np.int32(steps >> HUE_SHIFT_BITS)
    part_sector = np.int32(steps & _HUE_FRACTION_MASK)
    bits = np.int32(HUE_SHIFT_BITS)
    for k in range(values.shape[0] // 3):
        r = np.int32(values[3 * k])
        g = np.int32(values[3 * k + 1])
        b = np.int32(values[3 * k + 2])
        high = max(r, max(g, b))
        low = min(r, min(g, b))
        spread = np.int32(high - low)
        # the hue's sector and the rest, in [0, spread], from the highest component (tested
        # in rgb_to_hsv's order: red, green, blue) and the two others: red highest,
        # H = g - b (sector 0, or 5 with the rest spread + g - b); green: 2 * spread + b - r;
        # blue: 4 * spread + r - g
        red_high = high == r
        green_high = (not red_high) and high == g
        difference = np.int32(g - b) if red_high else (np.int32(b - r) if green_high else np.int32(r - g))
        base = np.int32(0) if red_high else (np.int32(2) if green_high else np.int32(4))
        falling = difference < 0
        rest = np.int32(difference + spread) if falling else difference
        sector = np.int32(base + np.int32(5)) if falling else base        # base - 1, modulo 6
        # plus the shift: whole sectors, and part of one (in units of 2**-13 sector)
        unit = np.int32(spread << bits)
        x = np.int32(np.int32(rest << bits) + np.int32(spread * part_sector))   # in [0, 2 * unit)
        carry = x >= unit                                                 # grey: unit 0, x 0
        x = np.int32(x - unit) if carry else x
        sector = np.int32(np.int32(sector + whole_sectors) + np.int32(carry))
        # modulo 6 (it was below 9 + 5 + 1 = 15)
        sector = np.int32(sector - np.int32(6)) if sector >= 6 else sector
        sector = np.int32(sector - np.int32(6)) if sector >= 6 else sector
        # the middle component, times 2**13: low + rest (even sectors), high - rest (odd)
        level = (np.int32(np.int32(high << bits) - x) if sector & 1
                 else np.int32(np.int32(low << bits) + x))
        fraction = np.int32(level & _HUE_FRACTION_MASK)
        bump = np.int32(np.int32(np.int32(85000 * fraction) + np.int32(333 * level))
                        >= np.int32(85000 << HUE_SHIFT_BITS))
        middle = np.int32(np.int32(level >> bits) + bump)
        # sectors 0..5: (high, rise, low), (fall, high, low), (low, high, rise),
        # (low, fall, high), (rise, low, high), (high, low, fall)
        out_r = high if (sector == 0 or sector == 5) else (middle if (sector == 1 or sector == 4) else low)
        out_g = middle if (sector == 0 or sector == 3) else (high if sector <= 2 else low)
        out_b = low if sector <= 1 else (middle if (sector == 2 or sector == 5) else high)
        values[3 * k] = np.uint8(out_r)
        values[3 * k + 1] = np.uint8(out_g)
        values[3 * k + 2] = np.uint8(out_b)


@njit(nogil=True, cache=True)
def adjust_hue(image, shift):
    """Rotate each pixel's hue by ``shift`` (in turns, [-0.5, 0.5]) through HSV (one
    channel: unchanged): ``rgb_to_hsv``, ``(hue + shift) % 1``, ``hsv_to_rgb``, each
    component ``trunc(v * 255.999)``, computed exactly in integers with the shift rounded
    down to a step of 1/49152 turn (``rotate_hue_inplace``)."""
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
