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

    ``images`` and ``out`` are ``(n * height, width * channels)`` and C-contiguous, so the
    rows that stay inside the image are one contiguous run in both: the kernel copies that
    run in one loop (what lands in a row's first or last ``|dx|`` pixels is a neighbouring
    row's and is overwritten by the fill), then fills the rows and row ends that came in
    from outside. ``fill_row`` is the fill value per channel repeated ``width`` times.
    """
    row_length = images.shape[1]
    flat_in = images.reshape(-1)
    flat_out = out.reshape(-1)
    span = 2 * padding + 1
    for i in range(indices.shape[0]):
        key = sample_key(seed, indices[i])
        dy = min(int(uniform(key, 0) * span), span - 1) - padding
        dx = min(int(uniform(key, 1) * span), span - 1) - padding
        shift = dx * channels
        lo = max(0, -shift)                  # out row [lo, hi) reads source row [lo + shift, hi + shift)
        hi = min(row_length, row_length - shift)
        y0, y1 = max(0, -dy), min(height, height - dy)
        first = i * height
        if hi <= lo or y1 <= y0:
            y0 = y1 = 0
        else:
            start = (first + y0) * row_length + lo
            stop = (first + y1 - 1) * row_length + hi
            offset = dy * row_length + shift
            # indices counted from 0 in views: numba's check for negative indices then folds
            # away and the loop vectorizes
            source = flat_in[start + offset:stop + offset]
            target = flat_out[start:stop]
            for k in range(target.shape[0]):
                target[k] = source[k]
            for y in range(y0, y1):
                row = out[first + y]
                for k in range(lo):
                    row[k] = fill_row[k]
                for k in range(hi, row_length):
                    row[k] = fill_row[k]
        for y in range(height):
            if y < y0 or y >= y1:
                row = out[first + y]
                for k in range(row_length):
                    row[k] = fill_row[k]


@njit(nogil=True, cache=True)
def normalize_rows(images, scale_row, offset_row, out):
    """``out = images * scale + offset`` on ``(rows, width * channels)`` matrices, the
    per-channel constants repeated along a row: one contiguous, vectorised loop per row."""
    for r in range(images.shape[0]):
        source = images[r]
        row = out[r]
        for k in range(source.shape[0]):
            row[k] = source[k] * scale_row[k] + offset_row[k]
