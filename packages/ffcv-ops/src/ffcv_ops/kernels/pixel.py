"""Per-pixel point operations on uint8 image batches (in place): solarization and
grayscale conversion."""
import numpy as np
from numba import njit

from .random import sample_key, uniform


@njit(nogil=True, cache=True)
def solarize_inplace(rows, indices, seed, prob, threshold):
    """``x -> 255 - x`` where ``x >= threshold``, in the images whose draw 0 is below ``prob``.

    ``rows`` is ``(n, height * width * channels)`` uint8; ``threshold`` an integer in
    ``0..256`` (256: nothing changes).
    """
    for i in range(indices.shape[0]):
        if uniform(sample_key(seed, indices[i]), 0) < prob:
            row = rows[i]
            for k in range(row.shape[0]):
                value = row[k]
                if value >= threshold:
                    row[k] = 255 - value


@njit(nogil=True, cache=True)
def grayscale_inplace(pixels, indices, seed, p):
    """Replace every channel by the ITU-R 601-2 luma ``(299 r + 587 g + 114 b) / 1000``
    rounded half up (in integers: exact), in the images whose draw 0 is below ``p``.

    ``pixels`` is ``(n, height * width, 3)`` uint8.
    """
    for i in range(indices.shape[0]):
        if uniform(sample_key(seed, indices[i]), 0) < p:
            image = np.ascontiguousarray(pixels[i])
            gray_values_inplace(image.reshape(-1))
            if image.ctypes.data != pixels[i].ctypes.data:      # a strided batch: worked on a copy
                pixels[i] = image


@njit(nogil=True, cache=True)
def gray_values_inplace(values):
    """``grayscale_inplace`` of one image's flat run of RGB triples. Unsigned arithmetic:
    its division by 1000 compiles to a multiplication (a signed one keeps Python's floor
    rounding steps), and over flat values the loop vectorizes."""
    for k in range(values.shape[0] // 3):
        luma = (np.uint32(299) * values[3 * k] + np.uint32(587) * values[3 * k + 1]
                + np.uint32(114) * values[3 * k + 2] + np.uint32(500)) // np.uint32(1000)
        values[3 * k] = luma
        values[3 * k + 1] = luma
        values[3 * k + 2] = luma
