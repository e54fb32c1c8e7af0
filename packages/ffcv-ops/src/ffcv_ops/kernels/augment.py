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
def translate(images, out, indices, seed, padding, fill):
    """``out[i]``: ``images[i]`` shifted by (dy, dx), each drawn uniformly from
    ``-padding..padding``; pixels shifted in from outside are ``fill``."""
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    span = 2 * padding + 1
    for i in range(images.shape[0]):
        key = sample_key(seed, indices[i])
        dy = min(int(uniform(key, 0) * span), span - 1) - padding
        dx = min(int(uniform(key, 1) * span), span - 1) - padding
        x0, x1 = max(0, -dx), min(width, width - dx)  # columns of out that read from the image
        for y in range(height):
            sy = y + dy
            row = out[i, y]
            if sy < 0 or sy >= height:
                for x in range(width):
                    for c in range(channels):
                        row[x, c] = fill[c]
                continue
            source = images[i, sy]
            for x in range(x0):
                for c in range(channels):
                    row[x, c] = fill[c]
            for x in range(x0, x1):
                for c in range(channels):
                    row[x, c] = source[x + dx, c]
            for x in range(max(x0, x1), width):
                for c in range(channels):
                    row[x, c] = fill[c]


@njit(nogil=True, cache=True)
def normalize_hwc(images, scale, offset, out):
    """``out = images * scale + offset`` per channel (``scale = 1/std``, ``offset = -mean/std``)."""
    for i in range(images.shape[0]):
        for y in range(images.shape[1]):
            for x in range(images.shape[2]):
                for c in range(images.shape[3]):
                    out[i, y, x, c] = images[i, y, x, c] * scale[c] + offset[c]
