"""Per-sample augmentations on batches of HxWxC images (in place)."""
from numba import njit

from .random import sample_key, uniform


@njit(nogil=True, cache=True)
def flip_draws(indices, seed, flip_prob, out):
    """``out[i]``: whether sample ``indices[i]`` is flipped (same draw as the kernel below)."""
    for i in range(indices.shape[0]):
        out[i] = uniform(sample_key(seed, indices[i]), 0) < flip_prob


@njit(nogil=True, cache=True)
def flip_horizontal_inplace(images, indices, seed, flip_prob):
    """Mirror left-right the images whose draw is below ``flip_prob``."""
    width = images.shape[2]
    for i in range(images.shape[0]):
        if uniform(sample_key(seed, indices[i]), 0) < flip_prob:
            image = images[i]
            for y in range(image.shape[0]):
                row = image[y]
                for x in range(width // 2):
                    for c in range(row.shape[1]):
                        tmp = row[x, c]
                        row[x, c] = row[width - 1 - x, c]
                        row[width - 1 - x, c] = tmp


@njit(nogil=True, cache=True)
def cutout_inplace(images, indices, seed, size, fill):
    """Fill a ``size`` x ``size`` square (clipped at the borders) around a random centre."""
    height, width = images.shape[1], images.shape[2]
    half = size // 2
    for i in range(images.shape[0]):
        key = sample_key(seed, indices[i])
        cy = int(uniform(key, 0) * height)
        cx = int(uniform(key, 1) * width)
        y0, y1 = max(0, cy - half), min(height, cy - half + size)
        x0, x1 = max(0, cx - half), min(width, cx - half + size)
        for y in range(y0, y1):
            for x in range(x0, x1):
                for c in range(images.shape[3]):
                    images[i, y, x, c] = fill[c]


@njit(nogil=True, cache=True)
def translate_rows(images, out, height, channels, indices, seed, padding, fill_row):
    """``out[i]``: image ``i`` shifted by (dy, dx), each drawn uniformly from
    ``-padding..padding``; what comes in from outside is the fill.

    ``images`` and ``out`` are ``(n * height, width * channels)``: each image row is one
    contiguous row, so the kernel copies row segments (vectorised) rather than pixels.
    ``fill_row`` is the fill value per channel repeated ``width`` times.
    """
    row_length = images.shape[1]
    span = 2 * padding + 1
    for i in range(indices.shape[0]):
        key = sample_key(seed, indices[i])
        dy = min(int(uniform(key, 0) * span), span - 1) - padding
        dx = min(int(uniform(key, 1) * span), span - 1) - padding
        shift = dx * channels
        lo = max(0, -shift)                  # out[lo:hi] reads images[lo + shift:hi + shift]
        hi = min(row_length, row_length - shift)
        for y in range(height):
            row = out[i * height + y]
            sy = y + dy
            if sy < 0 or sy >= height or hi <= lo:
                row[:] = fill_row
                continue
            source = images[i * height + sy]
            row[:lo] = fill_row[:lo]
            row[lo:hi] = source[lo + shift:hi + shift]
            row[hi:] = fill_row[hi:]


@njit(nogil=True, cache=True)
def normalize_rows(images, scale_row, offset_row, out):
    """``out = images * scale + offset`` on ``(rows, width * channels)`` matrices, the
    per-channel constants repeated along a row: one contiguous, vectorised loop per row."""
    for r in range(images.shape[0]):
        source = images[r]
        row = out[r]
        for k in range(source.shape[0]):
            row[k] = source[k] * scale_row[k] + offset_row[k]
