"""The operations of torchvision's automatic augmentation policies (``RandAugment``,
``TrivialAugmentWide``) on one uint8 image ``(height, width, channels)``, in place, and the
policies' batch kernels: one compiled call per chunk, dispatching per image on an op code.

Each op takes a signed magnitude as torchvision's ``_apply_op`` does: shears ``atan``
of it in degrees about the top-left corner, translations ``int(magnitude)`` pixels,
rotations in degrees (counter-clockwise), colour factors ``1 + magnitude``, posterize
``int(magnitude)`` bits, solarize from a threshold ``magnitude``.
"""
import math

import numpy as np
from numba import njit

from .affine import inverse_affine_matrix, rotation_matrix, warp_inplace
from .color import clamp_to_uint8
from .color_jitter import adjust_brightness, adjust_contrast, adjust_saturation
from .random import sample_key, uniform

# op codes, in torchvision's order of the policies' augmentation space
IDENTITY, SHEAR_X, SHEAR_Y, TRANSLATE_X, TRANSLATE_Y, ROTATE, BRIGHTNESS, COLOR, CONTRAST, SHARPNESS, \
    POSTERIZE, SOLARIZE, AUTO_CONTRAST, EQUALIZE = range(14)
NUM_OPS = 14
OP_NAMES = ('Identity', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate', 'Brightness', 'Color',
            'Contrast', 'Sharpness', 'Posterize', 'Solarize', 'AutoContrast', 'Equalize')


@njit(nogil=True, cache=True)
def adjust_sharpness(image, scratch, factor):
    """Blend with a smoothed copy: ``clamp(factor * x + (1 - factor) * smooth)``, where
    ``smooth`` is the 3x3 filter ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`` rounded (no ties:
    13 is odd) inside the border and the image itself on the border row and column.
    Images of 2 pixels or fewer on a side are left as they are."""
    height, width, channels = image.shape
    if height <= 2 or width <= 2:
        return
    scratch[:] = image
    for y in range(1, height - 1):
        for x in range(1, width - 1):
            for c in range(channels):
                total = 4 * np.int64(image[y, x, c])
                for dy in range(-1, 2):
                    for dx in range(-1, 2):
                        total += np.int64(image[y + dy, x + dx, c])
                scratch[y, x, c] = (2 * total + 13) // 26            # round(total / 13)
    rest = 1.0 - factor
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                image[y, x, c] = clamp_to_uint8(factor * image[y, x, c] + rest * scratch[y, x, c])


@njit(nogil=True, cache=True)
def posterize(image, bits):
    """Keep the ``bits`` (0..8) highest bits of every value."""
    mask = np.uint8((0xFF << (8 - bits)) & 0xFF)
    height, width, channels = image.shape
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                image[y, x, c] = image[y, x, c] & mask


@njit(nogil=True, cache=True)
def solarize(image, threshold):
    """``x -> 255 - x`` where ``x >= threshold``."""
    height, width, channels = image.shape
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                if image[y, x, c] >= threshold:
                    image[y, x, c] = 255 - image[y, x, c]


@njit(nogil=True, cache=True)
def auto_contrast(image):
    """Stretch each channel to [0, 255]: ``(x - low) * float32(255 / (high - low))`` in
    float32, truncated (torchvision's arithmetic); a constant channel is left as it is."""
    height, width, channels = image.shape
    if height == 0 or width == 0:
        return
    for c in range(channels):
        low = image[0, 0, c]
        high = image[0, 0, c]
        for y in range(height):
            for x in range(width):
                low = min(low, image[y, x, c])
                high = max(high, image[y, x, c])
        if high == low:
            continue
        scale = np.float32(255.0) / np.float32(high - low)
        for y in range(height):
            for x in range(width):
                value = np.float32(np.int64(image[y, x, c]) - np.int64(low)) * scale
                image[y, x, c] = np.uint8(min(max(value, np.float32(0.0)), np.float32(255.0)))


@njit(nogil=True, cache=True)
def equalize(image, histogram, table):
    """Histogram equalisation per channel (torchvision's integer recipe): ``step`` is the
    count of all values but those of the highest value present, floor-divided by 255; a
    channel with ``step == 0`` is left as it is; otherwise value ``v`` maps to
    ``min(255, (count below v + step // 2) // step)``. ``histogram`` (int64) and ``table``
    (uint8) are room for 256 values each."""
    height, width, channels = image.shape
    for c in range(channels):
        histogram[:] = 0
        for y in range(height):
            for x in range(width):
                histogram[image[y, x, c]] += 1
        highest = 255
        while highest > 0 and histogram[highest] == 0:
            highest -= 1
        step = (height * width - histogram[highest]) // 255
        if step == 0:
            continue
        below = 0
        for v in range(256):
            table[v] = min(255, (below + step // 2) // step)
            below += histogram[v]
        for y in range(height):
            for x in range(width):
                image[y, x, c] = table[image[y, x, c]]


@njit(nogil=True, cache=True)
def apply_policy_op(image, work, op, magnitude, fill):
    """Op ``op`` (an op code) with signed ``magnitude`` on ``image``, in place; ``work`` is
    the scratch space of ``policy_work`` (allocated once per chunk, not per image)."""
    scratch, matrix, histogram, table = work
    height, width = image.shape[0], image.shape[1]
    if op == SHEAR_X or op == SHEAR_Y:
        # about the image's top-left corner: (-width / 2, -height / 2) from the centre
        angle = math.degrees(math.atan(magnitude))
        shear_x = angle if op == SHEAR_X else 0.0
        shear_y = angle if op == SHEAR_Y else 0.0
        inverse_affine_matrix(-0.5 * width, -0.5 * height, 0.0, 0.0, 0.0, 1.0, shear_x, shear_y, matrix)
        warp_inplace(image, scratch, matrix, fill)
    elif op == TRANSLATE_X or op == TRANSLATE_Y:
        shift = float(int(magnitude))
        inverse_affine_matrix(0.0, 0.0, 0.0, shift if op == TRANSLATE_X else 0.0,
                              shift if op == TRANSLATE_Y else 0.0, 1.0, 0.0, 0.0, matrix)
        warp_inplace(image, scratch, matrix, fill)
    elif op == ROTATE:
        rotation_matrix(magnitude, matrix)
        warp_inplace(image, scratch, matrix, fill)
    elif op == BRIGHTNESS:
        adjust_brightness(image, 1.0 + magnitude)
    elif op == COLOR:
        adjust_saturation(image, 1.0 + magnitude)
    elif op == CONTRAST:
        adjust_contrast(image, 1.0 + magnitude)
    elif op == SHARPNESS:
        adjust_sharpness(image, scratch, 1.0 + magnitude)
    elif op == POSTERIZE:
        posterize(image, int(magnitude))
    elif op == SOLARIZE:
        solarize(image, magnitude)
    elif op == AUTO_CONTRAST:
        auto_contrast(image)
    elif op == EQUALIZE:
        equalize(image, histogram, table)


@njit(nogil=True, cache=True)
def policy_work(height, width, channels):
    """The scratch space of ``apply_policy_op`` for images of one shape: an image, a 2x3
    matrix, a histogram and a lookup table."""
    return (np.empty((height, width, channels), np.uint8), np.empty(6, np.float64), np.empty(256, np.int64),
            np.empty(256, np.uint8))


@njit(nogil=True, cache=True)
def rand_augment_draw(key, position, magnitudes, signed):
    """The op and signed magnitude of RandAugment's op number ``position`` for a sample:
    op ``floor(u * 14)`` from draw ``2 * position``, its magnitude negated when the op is
    signed and draw ``2 * position + 1`` is below 1/2."""
    op = min(int(uniform(key, 2 * position) * NUM_OPS), NUM_OPS - 1)
    magnitude = magnitudes[op]
    if signed[op] and uniform(key, 2 * position + 1) < 0.5:
        magnitude = -magnitude
    return op, magnitude


@njit(nogil=True, cache=True)
def rand_augment_inplace(images, indices, seed, num_ops, magnitudes, signed, fill):
    """RandAugment of ``images`` ``(n, height, width, channels)``, in place: ``num_ops``
    ops per image (``rand_augment_draw``), ``magnitudes[op]`` the unsigned magnitude of each."""
    n, height, width, channels = images.shape
    work = policy_work(height, width, channels)
    for i in range(n):
        key = sample_key(seed, indices[i])
        for position in range(num_ops):
            op, magnitude = rand_augment_draw(key, position, magnitudes, signed)
            apply_policy_op(images[i], work, op, magnitude, fill)


@njit(nogil=True, cache=True)
def trivial_augment_draw(key, magnitudes, num_magnitudes, signed):
    """TrivialAugmentWide's op and signed magnitude for a sample: op ``floor(u_0 * 14)``,
    magnitude ``magnitudes[op, floor(u_1 * num_magnitudes[op])]``, negated when the op is
    signed and ``u_2 < 1/2``."""
    op = min(int(uniform(key, 0) * NUM_OPS), NUM_OPS - 1)
    count = num_magnitudes[op]
    magnitude = magnitudes[op, min(int(uniform(key, 1) * count), count - 1)]
    if signed[op] and uniform(key, 2) < 0.5:
        magnitude = -magnitude
    return op, magnitude


@njit(nogil=True, cache=True)
def trivial_augment_inplace(images, indices, seed, magnitudes, num_magnitudes, signed, fill):
    """TrivialAugmentWide of ``images``, in place: one op per image (``trivial_augment_draw``)."""
    n, height, width, channels = images.shape
    work = policy_work(height, width, channels)
    for i in range(n):
        op, magnitude = trivial_augment_draw(sample_key(seed, indices[i]), magnitudes, num_magnitudes, signed)
        apply_policy_op(images[i], work, op, magnitude, fill)
