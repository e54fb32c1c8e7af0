"""Resizing a crop of a uint8 image with OpenCV's ``INTER_AREA`` rule, inside compiled code.

``resize_area(source, top, left, height, width, destination, scratch)`` writes into
``destination`` what ``cv2.resize(source[top:top + height, left:left + width],
(out_width, out_height), interpolation=cv2.INTER_AREA)`` gives, without going back to
Python and without holding the GIL, so that a decoder can decode, crop and resize a whole
chunk of images in one compiled call.

It is not an approximation of OpenCV's result but a re-enactment of OpenCV's arithmetic
(``modules/imgproc/src/resize.cpp``), which takes one of three routes:

* **Shrinking by integer factors in both axes** (``is_area_fast``; this includes 1, i.e.
  a copy): every output pixel is the plain average of its ``fy x fx`` block, summed in
  integers. For 2x2 blocks OpenCV rounds ``(sum + 2) >> 2`` (half up); for other
  blocks it multiplies by ``1.f / area`` in float32 and rounds half to even.
* **Shrinking in both axes, not by integers**: true area weights. Output column ``dx``
  covers source columns ``[dx * s, (dx + 1) * s)`` (``s = width / out_width``), each
  source column weighted by how much of it lies inside, divided by ``s``; the same along
  rows. OpenCV computes the weights in float64, stores them as float32, sums a row
  horizontally (``buf[dx] += pixel * weight`` in float32, source columns in increasing
  order) and then the rows vertically (``sum += weight * buf``), and rounds half to
  even. We do the same float32 operations in the same order, so the results agree bit
  for bit (LLVM does not reassociate or fuse float operations without fastmath).
* **Enlarging in at least one axis** (also for the other axis when that one shrinks):
  OpenCV's linear resize with its "area" coefficients, two taps per axis. For output
  index ``d``: ``s0 = floor(d * scale)``, ``f = (d + 1) - (s0 + 1) / scale`` (``f <= 0``:
  0, else its fractional part): the output is ``(1 - f) * in[s0] + f * in[s0 + 1]``
  (``in[last]`` alone past the end). So an output pixel lying wholly inside one input
  pixel copies it, and one straddling the border of two pixels mixes them by the share
  of the border it overlaps - the area rule again, for boxes smaller than a pixel. The
  weights are 11-bit fixed point (``round(w * 2048)``); the horizontal pass is exact in
  integers; the vertical pass is not quite ``(r0 * b0 + r1 * b1 + 2**21) >> 22`` but
  what OpenCV's SIMD code computes, truncating twice (and its scalar code for the last
  bytes of a row too, for uint8: no tail of a row ever differs),
  ``((((r0 >> 4) * b0) >> 16) + (((r1 >> 4) * b1) >> 16) + 2) >> 2``.

Layout: ``source`` is ``(H, W, C)`` uint8 with ``C`` 1, 3 or 4, every row contiguous (a
view of a larger buffer is fine: only rows ``top..top + height`` and columns
``left..left + width`` are read); ``destination`` is ``(out_height, out_width, C)`` uint8
with contiguous rows (e.g. ``batch[i]``). ``scratch`` is a contiguous, 8-byte aligned
(as numpy allocates) 1-D float32 array of at least ``resize_area_scratch_size(width,
out_width, C)`` elements, reused from call to call and from route to route (its contents
do not matter): the weight tables and the intermediate rows live there, so a call
allocates nothing. A chunk sizes it once for its widest crop; threads running at the same
time need one each. The crop box is passed
rather than a sliced view so that a compiled caller need not make one per image.

Checked (``tests/test_resize_kernel.py``): bit-exact against OpenCV 4.10 and 5.0 over
every route, 1, 3 and 4 channels, random and photo-like images; pixels outside the crop
are never read.

Speed notes (for whoever changes the loops; each was measured, see
``benchmarks/resize_kernel.py``): rows are addressed as unsigned offsets into one flat
byte view of each image, typed C-contiguous (``flat_bytes``, made once per call) - numba
adds a negative-index fix-up to every access with a signed index LLVM cannot prove
non-negative, which stops vectorization; slicing or reshaping a view per row costs
20-50 ns, more than some whole rows; and a view typed 'A' is addressed through its
runtime stride, which stops vectorization too. Integer arithmetic is cast back to int32
at each step so that LLVM uses 32-bit vector lanes (numba widens to int64). The row
loops are inlined (numba's ``inline='always'``) with the channel count, and in the area
route the tap count, as literals, so that the short inner loops unroll (2x faster).
Compiling the module takes 15-20 s; numba caches it.
"""
import numpy as np
from numba import int32, njit, uint64

DBL_EPSILON = 2.220446049250313e-16
COEF_SCALE = 2048           # OpenCV's INTER_RESIZE_COEF_SCALE: 11-bit fixed point weights


@njit(nogil=True, cache=True)
def resize_area_scratch_size(width: int, out_width: int, channels: int) -> int:
    """float32 elements of scratch ``resize_area`` needs for a crop ``width`` pixels wide
    resized to ``out_width`` pixels (any heights; a bound for the widest crop serves all):
    the most of ``width * channels`` (integer factors: a row of column sums, int32),
    ``width * channels + out_width * (2 + taps + 2 * channels)`` (area weights: a source
    row as float32, tables and two rows; ``taps`` at most ``width / out_width + 3``) and
    ``2 * width * channels + out_width * (4 + 2 * channels)`` (linear: tables and a row of
    pairs, uint64, and two rows, int32)."""
    return width * (2 * channels + 1) + out_width * (2 * channels + 6)


@njit(nogil=True, cache=True)
def resize_area(source, top: int, left: int, height: int, width: int, destination, scratch) -> None:
    """``destination[:] = cv2.resize(source[top:top + height, left:left + width],
    destination.shape[1::-1], interpolation=cv2.INTER_AREA)``, bit for bit (see the
    module's doc for the layouts and ``scratch``)."""
    out_height, out_width, channels = destination.shape
    if source.shape[2] != channels or source.strides[2] != 1 or source.strides[1] != channels \
            or destination.strides[2] != 1 or destination.strides[1] != channels \
            or source.strides[0] < 0 or destination.strides[0] < 0:
        raise ValueError('source and destination must be (H, W, C) uint8 with contiguous rows')
    if top < 0 or left < 0 or height < 1 or width < 1 or top + height > source.shape[0] \
            or left + width > source.shape[1] or out_height < 1 or out_width < 1:
        raise ValueError('empty or misplaced crop box, or empty destination')
    if scratch.shape[0] < resize_area_scratch_size(width, out_width, channels) or scratch.ctypes.data % 8:
        raise ValueError('scratch too small (see resize_area_scratch_size) or not 8-byte aligned')
    # flat views and offsets (typed C-contiguous whatever the arrays' own layouts, so that
    # the routes below are compiled once)
    src = flat_bytes(source)
    dst = flat_bytes(destination)
    src_row = uint64(source.strides[0])
    dst_row = uint64(destination.strides[0])
    corner = uint64(top) * src_row + uint64(left * channels)     # offset of the crop's pixel (0, 0)
    scratch = np.ascontiguousarray(scratch)
    # OpenCV's scales: the inverse of the inverse (it can differ from width / out_width
    # in the last bit, which decides whether a factor counts as an integer)
    inv_scale_x = out_width / width
    inv_scale_y = out_height / height
    scale_x = 1.0 / inv_scale_x
    scale_y = 1.0 / inv_scale_y
    if scale_x >= 1.0 and scale_y >= 1.0:
        factor_x = int(np.rint(scale_x))
        factor_y = int(np.rint(scale_y))
        if abs(scale_x - factor_x) < DBL_EPSILON and abs(scale_y - factor_y) < DBL_EPSILON:
            if factor_x == 2 and factor_y == 2:
                halve(src, corner, src_row, dst, dst_row, out_height, out_width, channels)
            else:
                box_average(src, corner, src_row, width, factor_y, factor_x, dst, dst_row, out_height,
                            out_width, channels, scratch)
        else:
            area_shrink(src, corner, src_row, height, width, scale_y, scale_x, dst, dst_row, out_height,
                        out_width, channels, scratch)
    else:
        area_linear(src, corner, src_row, height, width, scale_y, scale_x, inv_scale_y, inv_scale_x,
                    dst, dst_row, out_height, out_width, channels, scratch)


@njit(nogil=True, cache=True)
def flat_bytes(image):
    """All the bytes of an ``(H, W, C)`` uint8 image with contiguous rows, from its first
    pixel to its last, as one 1-D view typed C-contiguous (row ``y`` starts at
    ``y * image.strides[0]``). A view typed 'A' would not do: numba addresses its elements
    through its stride, a variable, and loops over it do not vectorize."""
    span = (image.shape[0] - 1) * image.strides[0] + image.shape[1] * image.shape[2]
    flat = np.ascontiguousarray(np.lib.stride_tricks.as_strided(image, shape=(span,), strides=(1,)))
    if flat.ctypes.data != image.ctypes.data:     # cannot happen: a stride of 1 is contiguous
        raise AssertionError('flat_bytes copied')
    return flat


@njit(nogil=True, cache=True, inline='always')
def saturate_uint8(value):
    """OpenCV's ``saturate_cast<uchar>(float)`` of a non-negative float32: rounded half to
    even (``cvRound``, the CPU's rounding), at most 255 (an int32, to store as uint8)."""
    return int32(min(np.rint(value), np.float32(255.0)))


# The row loops below take the channel count as an argument and are inlined (numba's
# inline='always') where they are called with a literal 1, 3 or 4: LLVM then sees a
# constant and unrolls and vectorizes the loop over channels. Called with a variable,
# they work for any count, slower. Offsets into flat images are uint64 (see the module's
# doc): mixing them with signed integers would give floats, hence the explicit casts.

# ---- integer factors -----------------------------------------------------------------------

@njit(nogil=True, cache=True)
def halve(src, corner, src_row, dst, dst_row, out_height, out_width, channels):
    """2x2 blocks: ``(a + b + c + d + 2) >> 2`` (OpenCV's ``ResizeAreaFastVec``)."""
    for dy in range(out_height):
        upper = corner + uint64(2 * dy) * src_row
        out = uint64(dy) * dst_row
        if channels == 3:
            halve_row(src, upper, upper + src_row, dst, out, out_width, 3)
        elif channels == 1:
            halve_row(src, upper, upper + src_row, dst, out, out_width, 1)
        elif channels == 4:
            halve_row(src, upper, upper + src_row, dst, out, out_width, 4)
        else:
            halve_row(src, upper, upper + src_row, dst, out, out_width, channels)


@njit(nogil=True, cache=True, inline='always')
def halve_row(src, upper, lower, dst, out, out_width, channels):
    """One output row from the source rows at offsets ``upper`` and ``lower``."""
    step = uint64(channels)
    for dx in range(out_width):
        for c in range(channels):
            s = uint64(2 * channels * dx + c)
            total = (int32(src[upper + s]) + int32(src[upper + s + step]) + int32(src[lower + s])
                     + int32(src[lower + s + step]))
            dst[out + uint64(channels * dx + c)] = int32(int32(total + 2) >> 2)


@njit(nogil=True, cache=True)
def box_average(src, corner, src_row, width, factor_y, factor_x, dst, dst_row, out_height, out_width,
                channels, scratch):
    """``factor_y x factor_x`` blocks (OpenCV's ``ResizeAreaFast_Invoker``): the sum of
    the block times ``1.f / area`` in float32, rounded half to even (for 1 x 1, a copy:
    what OpenCV does when the sizes are equal). Summed here as columns of ``factor_y``
    rows first (into int32 scratch), then ``factor_x`` columns."""
    row_len = width * channels
    if factor_x == 1 and factor_y == 1:
        for dy in range(out_height):
            row = corner + uint64(dy) * src_row
            out = uint64(dy) * dst_row
            for j in range(row_len):
                dst[out + uint64(j)] = src[row + uint64(j)]
        return
    columns = scratch[:row_len].view(np.int32)
    scale = np.float32(1.0) / np.float32(factor_y * factor_x)
    for dy in range(out_height):
        row = corner + uint64(dy * factor_y) * src_row
        for j in range(row_len):
            columns[j] = src[row + uint64(j)]
        for ky in range(1, factor_y):
            row += src_row
            for j in range(row_len):
                columns[j] = int32(columns[j] + int32(src[row + uint64(j)]))
        out = uint64(dy) * dst_row
        if factor_x == 1:
            for j in range(row_len):
                dst[out + uint64(j)] = saturate_uint8(np.float32(columns[j]) * scale)
        elif channels == 3:
            box_row(columns, factor_x, scale, dst, out, out_width, 3)
        elif channels == 1:
            box_row(columns, factor_x, scale, dst, out, out_width, 1)
        else:
            box_row(columns, factor_x, scale, dst, out, out_width, channels)


@njit(nogil=True, cache=True, inline='always')
def box_row(columns, factor_x, scale, dst, out, out_width, channels):
    """One output row from the column sums: ``factor_x`` columns per output pixel."""
    for dx in range(out_width):
        first = uint64(dx * factor_x * channels)
        for c in range(channels):
            total = int32(0)
            for k in range(factor_x):
                total = int32(total + columns[first + uint64(k * channels + c)])
            dst[out + uint64(dx * channels + c)] = saturate_uint8(np.float32(total) * scale)


# ---- shrinking, not by integers: true area weights -----------------------------------------

@njit(nogil=True, cache=True)
def area_cover(d, size, scale):
    """The source indices ``first..last`` output index ``d`` covers, and their weights:
    OpenCV's ``computeResizeAreaTab`` (float64, stored as float32). The box is
    ``[d * scale, (d + 1) * scale)``; a source index inside it weighs ``1 / cell``, the
    partly covered ones at its ends (if more than 1e-3 of them is covered) by the share
    covered. Returns ``first, last, left_partial, w_first, w_inner, right_partial, w_last``."""
    fs1 = d * scale
    fs2 = fs1 + scale
    cell = min(scale, size - fs1)
    s2 = min(int(np.floor(fs2)), size - 1)
    s1 = min(int(np.ceil(fs1)), s2)
    left_partial = s1 - fs1 > 1e-3
    right_partial = fs2 - s2 > 1e-3
    first = s1 - 1 if left_partial else s1
    last = s2 if right_partial else s2 - 1
    w_first = np.float32((s1 - fs1) / cell)
    w_inner = np.float32(1.0 / cell)
    w_last = np.float32(min(min(fs2 - s2, 1.0), cell) / cell)
    return first, last, left_partial, w_first, w_inner, right_partial, w_last


@njit(nogil=True, cache=True)
def area_weight(s, first, last, left_partial, w_first, w_inner, right_partial, w_last):
    """The weight of source index ``s`` in an ``area_cover``."""
    if s == first and left_partial:
        return w_first
    if s == last and right_partial:
        return w_last
    return w_inner


@njit(nogil=True, cache=True)
def area_shrink(src, corner, src_row, height, width, scale_y, scale_x, dst, dst_row, out_height, out_width,
                channels, scratch):
    """Area weights in both axes (OpenCV's ``resizeArea``), summed in float32 in OpenCV's
    order: each source row horizontally, then the rows of an output row vertically.

    The horizontal weights are a table of ``taps`` weights per output column from a start
    column, zero padded: adding ``p * 0`` to a non-negative sum changes nothing, so the
    sums are still OpenCV's, and the loop has a fixed length - a literal one (2, 3 or 4:
    shrinking by less than about 3) for the loop to unroll."""
    row_len = out_width * channels
    taps = 1
    for dx in range(out_width):
        first, last, lp, wf, wi, rp, wl = area_cover(dx, width, scale_x)
        taps = max(taps, last - first + 1)
    if taps == 1 and width > 1:        # no shrinking horizontally: rare, run as 2 taps
        taps = 2
    # scratch: start offsets (uint64), one source row as float32, weights, one horizontally
    # summed row, the vertical sum
    if scratch.shape[0] < 2 * out_width + width * channels + out_width * taps + 2 * row_len:
        raise ValueError('scratch too small (see resize_area_scratch_size)')
    starts = scratch[:2 * out_width].view(np.uint64)
    at = 2 * out_width
    values = scratch[at:at + width * channels]
    at += width * channels
    weights = scratch[at:at + out_width * taps]
    at += out_width * taps
    hrow = scratch[at:at + row_len]
    acc = scratch[at + row_len:at + 2 * row_len]
    for dx in range(out_width):
        first, last, lp, wf, wi, rp, wl = area_cover(dx, width, scale_x)
        # the window [start, start + taps) ends at last, or starts at 0 near the left edge
        start = max(0, last + 1 - taps)
        starts[dx] = uint64(start * channels)
        for k in range(taps):
            s = start + k
            weights[dx * taps + k] = (area_weight(s, first, last, lp, wf, wi, rp, wl)
                                      if first <= s <= last else np.float32(0.0))
    hrow_y = -1                          # the source row hrow holds
    for dy in range(out_height):
        first, last, lp, wf, wi, rp, wl = area_cover(dy, height, scale_y)
        for s in range(first, last + 1):
            if s != hrow_y:             # the row on the border of two output rows serves both
                row = corner + uint64(s) * src_row
                for j in range(width * channels):       # converted once, not once per tap
                    values[j] = np.float32(src[row + uint64(j)])
                area_row_of(values, starts, weights, hrow, taps, channels)
                hrow_y = s
            weight = area_weight(s, first, last, lp, wf, wi, rp, wl)
            if s == first:
                for j in range(row_len):
                    acc[j] = weight * hrow[j]
            else:
                for j in range(row_len):
                    acc[j] = acc[j] + weight * hrow[j]
        out = uint64(dy) * dst_row
        for j in range(row_len):
            dst[out + uint64(j)] = saturate_uint8(acc[j])


@njit(nogil=True, cache=True, inline='always')
def area_row_of(values, starts, weights, out, taps, channels):
    """``area_row`` with the tap count and the channel count as literals where they are
    the common ones."""
    if taps == 3:
        if channels == 3:
            area_row(values, starts, weights, out, 3, 3)
        elif channels == 1:
            area_row(values, starts, weights, out, 3, 1)
        else:
            area_row(values, starts, weights, out, 3, channels)
    elif taps == 2:
        if channels == 3:
            area_row(values, starts, weights, out, 2, 3)
        elif channels == 1:
            area_row(values, starts, weights, out, 2, 1)
        else:
            area_row(values, starts, weights, out, 2, channels)
    elif taps == 4:
        if channels == 3:
            area_row(values, starts, weights, out, 4, 3)
        elif channels == 1:
            area_row(values, starts, weights, out, 4, 1)
        else:
            area_row(values, starts, weights, out, 4, channels)
    else:
        area_row(values, starts, weights, out, taps, channels)


@njit(nogil=True, cache=True, inline='always')
def area_row(values, starts, weights, out, taps, channels):
    """``out[dx, c] = sum over k of values[starts[dx] + k, c] * weights[dx, k]`` in float32,
    ``k`` increasing (OpenCV starts from 0: ``0 + x`` is ``x``)."""
    for dx in range(starts.shape[0]):
        first = starts[dx]
        for c in range(channels):
            total = values[first + uint64(c)] * weights[dx * taps]
            for k in range(1, taps):
                total = total + values[first + uint64(k * channels + c)] * weights[dx * taps + k]
            out[dx * channels + c] = total


# ---- enlarging in some axis: linear with area coefficients ---------------------------------

@njit(nogil=True, cache=True)
def linear_tap(d, size, scale, inv_scale):
    """OpenCV's area-mode linear coefficients of output index ``d``: the first source
    index and the 11-bit weights of it and of the next one."""
    s = int(np.floor(d * scale))
    f = np.float32((d + 1) - (s + 1) * inv_scale)
    f = np.float32(0.0) if f <= 0 else f - np.float32(np.floor(f))
    if s >= size - 1:
        f = np.float32(0.0)
        s = size - 1
    w0 = int(np.rint((np.float32(1.0) - f) * np.float32(COEF_SCALE)))
    w1 = int(np.rint(f * np.float32(COEF_SCALE)))
    return s, w0, w1


@njit(nogil=True, cache=True)
def area_linear(src, corner, src_row, height, width, scale_y, scale_x, inv_scale_y, inv_scale_x,
                dst, dst_row, out_height, out_width, channels, scratch):
    """Two taps per axis, fixed point (OpenCV's ``resizeGeneric_`` with ``HResizeLinear``
    and ``VResizeLinear`` on ``short`` weights and ``int`` rows).

    The horizontal pass multiplies each pair of neighbouring values ``p0 | p1 << 32``
    (uint64) by ``a0 << 32 | a1``: bits 32..63 of the product are ``p0 * a0 + p1 * a1``
    (``p0 * a1 < 2**19`` does not carry into them; ``p1 * a0`` falls off the top) - one
    load and one multiplication per value instead of two of each, the loop that has to
    stay scalar (its loads are gathers)."""
    row_len = out_width * channels
    # scratch: as uint64, per output column the offset of its first source pixel in a row
    # and its two weights, and the pairs of one source row; as int32, two horizontally
    # resized rows
    words = scratch[:scratch.shape[0] // 2 * 2].view(np.uint64)
    starts = words[:out_width]
    weights = words[out_width:2 * out_width]
    pairs = words[2 * out_width:2 * out_width + width * channels]
    rows = scratch[2 * (2 * out_width + width * channels):].view(np.int32)
    upper = rows[:row_len]
    lower = rows[row_len:2 * row_len]
    for dx in range(out_width):
        s, w0, w1 = linear_tap(dx, width, scale_x, inv_scale_x)
        starts[dx] = uint64(s * channels)       # s is width - 1 only with w1 == 0 (no p1 needed)
        weights[dx] = (uint64(w0) << uint64(32)) | uint64(w1)
    # the horizontally resized source rows sy and sy + 1 an output row needs, kept from
    # one output row to the next (upper holds row upper_y, lower row lower_y)
    upper_y = -1
    lower_y = -1
    for dy in range(out_height):
        sy, b0, b1 = linear_tap(dy, height, scale_y, inv_scale_y)
        sy1 = min(sy + 1, height - 1)
        if upper_y != sy:
            if lower_y == sy:           # moving down one row: the lower row becomes the upper
                upper, lower = lower, upper
                upper_y, lower_y = lower_y, upper_y
            else:
                linear_row_of(src, corner + uint64(sy) * src_row, width, pairs, starts, weights, upper,
                              channels)
                upper_y = sy
        if lower_y != sy1:
            linear_row_of(src, corner + uint64(sy1) * src_row, width, pairs, starts, weights, lower,
                          channels)
            lower_y = sy1
        # OpenCV's VResizeLinear<uchar, int, short, ...>: ((r >> 4) * b) >> 16 for each row
        out = uint64(dy) * dst_row
        b0 = int32(b0)
        b1 = int32(b1)
        for j in range(row_len):
            r0 = int32(upper[j] >> 4)
            r1 = int32(lower[j] >> 4)
            dst[out + uint64(j)] = int32(int32(int32(int32(r0 * b0) >> 16) + int32(int32(r1 * b1) >> 16) + 2)
                                         >> 2)


@njit(nogil=True, cache=True, inline='always')
def linear_row_of(src, row, width, pairs, starts, weights, out, channels):
    """``linear_row`` with the channel count as a literal."""
    if channels == 3:
        linear_row(src, row, width, pairs, starts, weights, out, 3)
    elif channels == 1:
        linear_row(src, row, width, pairs, starts, weights, out, 1)
    elif channels == 4:
        linear_row(src, row, width, pairs, starts, weights, out, 4)
    else:
        linear_row(src, row, width, pairs, starts, weights, out, channels)


@njit(nogil=True, cache=True, inline='always')
def linear_row(src, row, width, pairs, starts, weights, out, channels):
    """``out[dx, c] = pixel[s0, c] * a0 + pixel[s0 + 1, c] * a1`` for the source row at
    offset ``row`` (exact), through ``pairs`` (see ``area_linear``)."""
    step = uint64(channels)
    last = (width - 1) * channels
    for j in range(last):
        at = row + uint64(j)
        pairs[j] = uint64(src[at]) | (uint64(src[at + step]) << uint64(32))
    for j in range(last, width * channels):  # the last pixel has no right neighbour (weight 0)
        pairs[j] = uint64(src[row + uint64(j)])
    for dx in range(starts.shape[0]):
        first = starts[dx]
        weight = weights[dx]
        for c in range(channels):
            out[dx * channels + c] = int32((pairs[first + uint64(c)] * weight) >> uint64(32))
