"""Shrinking a box with fractional edges, by area averaging.

A crop decoded at 1/2, 1/4 or 1/8 scale (``kernels/jpeg.py``) no longer starts and ends on
whole pixels: a box from row 37 of the full image is row 18.5 at half scale. Rounding it
to whole pixels would shift the crop by up to half a scaled pixel, which on textured photos
moves the result farther from the full decode than the change of scale itself. So the box
keeps its fractional edges and each output pixel is the average of the source over its own
rectangle ``[y0 + dy * sy, y0 + (dy + 1) * sy) x [x0 + dx * sx, ...)``, every source pixel
a unit square weighted by how much of it the rectangle covers: OpenCV's ``INTER_AREA``
rule, for boxes that need not start on a pixel. Only for shrinking (``sy, sx >= 1``), which
is how the decoders use it (a crop is decoded at a reduced scale only while it stays at
least the output's size).

Separable: weights per output column and per output row are computed once per call into
the caller's scratch; each source row is reduced horizontally once (float32) and added
into the output rows that cover it.
"""
import math

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def area_box_scratch_size(columns: int, rows: int, out_height: int, out_width: int, channels: int) -> int:
    """float32 elements of scratch :func:`area_box` needs for a source region of ``rows`` x
    ``columns`` pixels shrunk to ``out_height`` x ``out_width``."""
    taps_x = columns // max(out_width, 1) + 3
    taps_y = rows // max(out_height, 1) + 3
    return (out_width * (2 + taps_x) + out_height * (2 + taps_y)
            + out_width * channels * (out_height + 1))


@njit(nogil=True, cache=True)
def _weights(origin, scale, count, limit, first, taps, weights, max_taps):
    """For output index d in ``range(count)``: the first source index and the weights of
    the source pixels its interval ``[origin + d * scale, origin + (d + 1) * scale)``
    covers (clipped to ``[0, limit)``), normalised to sum 1."""
    for d in range(count):
        start = origin + d * scale
        end = start + scale
        lo = max(int(math.floor(start)), 0)
        hi = min(int(math.ceil(end)), limit)
        if hi <= lo:               # rounding at the far edge: take the last pixel
            lo = min(lo, limit - 1)
            hi = lo + 1
        n = min(hi - lo, max_taps)
        first[d] = lo
        taps[d] = n
        total = 0.0
        for t in range(n):
            pixel = lo + t
            cover = min(end, pixel + 1.0) - max(start, float(pixel))
            if cover < 0.0:
                cover = 0.0
            weights[d * max_taps + t] = cover
            total += cover
        if total <= 0.0:
            weights[d * max_taps] = 1.0
            total = 1.0
        for t in range(n):
            weights[d * max_taps + t] /= total


@njit(nogil=True, cache=True)
def area_box(source, top, left, height, width, destination, scratch):
    """``destination`` ((out_h, out_w, C) uint8) = the area average of the box of
    ``source`` ((H, W, C) uint8) starting at row ``top``, column ``left`` (floats), ``height``
    x ``width`` pixels (floats, at least the output's size), rounded to the nearest.
    ``scratch``: float32, ``area_box_scratch_size`` elements."""
    out_height, out_width, channels = destination.shape
    rows, columns = source.shape[0], source.shape[1]
    scale_y = height / out_height
    scale_x = width / out_width
    taps_x = columns // max(out_width, 1) + 3
    taps_y = rows // max(out_height, 1) + 3
    taps_x = min(taps_x, int(math.ceil(scale_x)) + 2)
    taps_y = min(taps_y, int(math.ceil(scale_y)) + 2)
    # scratch layout: column tables, row tables, one reduced row, the output accumulator
    at = 0
    first_x = scratch[at:at + out_width].view(np.int32)
    at += out_width
    count_x = scratch[at:at + out_width].view(np.int32)
    at += out_width
    weight_x = scratch[at:at + out_width * taps_x]
    at += out_width * taps_x
    first_y = scratch[at:at + out_height].view(np.int32)
    at += out_height
    count_y = scratch[at:at + out_height].view(np.int32)
    at += out_height
    weight_y = scratch[at:at + out_height * taps_y]
    at += out_height * taps_y
    reduced = scratch[at:at + out_width * channels]
    at += out_width * channels
    accumulator = scratch[at:at + out_height * out_width * channels]
    _weights(left, scale_x, out_width, columns, first_x, count_x, weight_x, taps_x)
    _weights(top, scale_y, out_height, rows, first_y, count_y, weight_y, taps_y)
    accumulator[:] = 0.0
    # each source row that some output row covers: reduce it horizontally once, add it to
    # the (one or two, for sy < 2 sometimes more) output rows that cover it
    first_row = first_y[0]
    last_row = first_y[out_height - 1] + count_y[out_height - 1]
    dy = 0
    for y in range(first_row, last_row):
        line = source[y]
        for dx in range(out_width):
            base = first_x[dx]
            for c in range(channels):
                total = np.float32(0.0)
                for t in range(count_x[dx]):
                    total += weight_x[dx * taps_x + t] * np.float32(line[base + t, c])
                reduced[dx * channels + c] = total
        while dy < out_height and first_y[dy] + count_y[dy] <= y:
            dy += 1
        d = dy
        while d < out_height and first_y[d] <= y:
            t = y - first_y[d]
            if t < count_y[d]:
                w = weight_y[d * taps_y + t]
                row_at = d * out_width * channels
                for k in range(out_width * channels):
                    accumulator[row_at + k] += w * reduced[k]
            d += 1
    for d in range(out_height):
        row_at = d * out_width * channels
        for dx in range(out_width):
            for c in range(channels):
                value = accumulator[row_at + dx * channels + c] + np.float32(0.5)
                destination[d, dx, c] = np.uint8(min(max(value, np.float32(0.0)), np.float32(255.0)))
