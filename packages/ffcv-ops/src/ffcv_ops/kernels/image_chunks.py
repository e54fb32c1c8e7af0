"""A chunk of stored images into batch rows, in one compiled call without the GIL.

The image decoders call these once per chunk: every JPEG is decoded by libjpeg from
compiled code (``kernels/jpeg.py``), only as much of it as its crop needs, and at a reduced
scale when the crop will be shrunk by 2x or more; raw images are read in place; each crop
is resized with OpenCV's ``INTER_AREA`` rule (``kernels/resize.py``) into its row of the
batch. What these kernels do not decode (PNG, four channels, a JPEG libjpeg refuses or
warns about, a crop box outside its image) they mark in ``status`` for the decoder's
per-image Python path, which decodes it as before or says what is wrong with it.
"""
import numpy as np
from numba import njit

from .area_box import area_box, area_box_scratch_size
from .augment import flip_draws
from .copy import copy_bytes
from .crop import center_crop_boxes, random_resized_crop_boxes
from .images import MODE_JPEG, MODE_RAW, locate_images
from .jpeg import (CONTEXT_BYTES, CROP_X, FUNCTION_NAMES, JCS_GRAYSCALE, JCS_RGB, NOT_HERE, OK, close_decompressor,
                   decode_region, end_image, open_decompressor, scale_for)
from .mirror import mirror_chosen
from .native import load_u32
from .resize import resize_area, resize_area_scratch_size


@njit(nogil=True, cache=True)
def _color_space(channels):
    if channels == 3:
        return JCS_RGB
    if channels == 1:
        return JCS_GRAYSCALE
    return 0


@njit(nogil=True, cache=True)
def _left_out(status):
    """How many images a kernel left to the caller (a non-zero ``status``)."""
    count = 0
    for code in status:
        if code != OK:
            count += 1
    return count


@njit(nogil=True, cache=True)
def _box_inside(top, left, height, width, image_height, image_width):
    return 0 <= top and 0 <= left and height > 0 and width > 0 and top + height <= image_height \
        and left + width <= image_width


@njit(nogil=True, cache=True)
def decode_resized_crops(functions, handlers, context, data, modes, starts, sizes, heights, widths, boxes,
                         channels, max_denom, pixels, resize_scratch, area_scratch, destination, status):
    """``destination[i]`` = the crop ``boxes[i]`` (top, left, height, width) of image ``i``
    resized to ``destination.shape[1:3]``, for every image this kernel can decode; the
    others get a non-zero ``status[i]`` (see the module's doc). Returns how many those are.

    ``functions``, ``handlers``: ``ffcv_ops.libjpeg.LibJpeg``'s tables; ``context``: a
    ``kernels.jpeg.CONTEXT_BYTES`` block; ``data``: the file's bytes, the images at
    ``starts``/``sizes``; ``pixels``: uint8 scratch of at least the chunk's largest
    height x width x channels; ``resize_scratch``: float32, ``resize_area_scratch_size``
    of the widest crop; ``area_scratch``: float32, ``area_box_scratch_size`` of the widest
    and highest image. JPEGs are decoded at 1/2, 1/4 or 1/8 scale (at most 1/``max_denom``)
    when the crop stays at least the output's size; the crop then keeps its fractional
    edges at that scale (``kernels/area_box.py``)."""
    n = modes.shape[0]
    functions_at = np.uint64(functions.ctypes.data)
    context_at = np.uint64(context.ctypes.data)
    pixels_at = np.uint64(pixels.ctypes.data)
    data_at = np.uint64(data.ctypes.data)
    out_height = destination.shape[1]
    out_width = destination.shape[2]
    color_space = _color_space(channels)
    opened = open_decompressor(functions_at, context_at, np.uint64(handlers.ctypes.data)) == OK
    for i in range(n):
        height = heights[i]
        width = widths[i]
        top, left, crop_height, crop_width = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        if not _box_inside(top, left, crop_height, crop_width, height, width):
            status[i] = NOT_HERE
            continue
        if modes[i] == MODE_RAW:
            source = data[starts[i]:starts[i] + height * width * channels].reshape((height, width, channels))
            resize_area(source, top, left, crop_height, crop_width, destination[i], resize_scratch)
            status[i] = OK
            continue
        if modes[i] != MODE_JPEG or color_space == 0 or not opened:
            status[i] = NOT_HERE
            continue
        denom = scale_for(crop_height, crop_width, out_height, out_width, max_denom)
        scaled_height = (height + denom - 1) // denom
        scaled_width = (width + denom - 1) // denom
        # the rows and columns of the scaled image the crop touches
        y0 = top // denom
        rows = min((top + crop_height + denom - 1) // denom, scaled_height) - y0
        x0 = left // denom
        columns = min((left + crop_width + denom - 1) // denom, scaled_width) - x0
        # a column more on each side: at the edges of a partial decode, libjpeg's upsampling
        # of the colour planes has no neighbour and differs from the full decode there
        first = max(0, x0 - 1)
        last = min(scaled_width, x0 + columns + 1)
        stride = scaled_width * channels
        if rows * stride > pixels.shape[0]:
            status[i] = NOT_HERE
            continue
        code = decode_region(functions_at, context_at, data_at + np.uint64(starts[i]), sizes[i], height, width,
                             color_space, channels, denom, y0, first, rows, last - first, pixels_at, stride)
        end_image(functions_at, context_at)
        if code != OK:
            status[i] = code
            continue
        decoded_from = np.int64(load_u32(context_at + np.uint64(CROP_X)))
        region = pixels[:rows * stride].reshape((rows, scaled_width, channels))
        if denom == 1:
            resize_area(region, 0, x0 - decoded_from, rows, columns, destination[i], resize_scratch)
        else:
            area_box(region[:, :last - decoded_from], top / denom - y0, left / denom - decoded_from,
                     crop_height / denom, crop_width / denom, destination[i], area_scratch)
        status[i] = OK
    if opened:
        close_decompressor(functions_at, context_at)
    return _left_out(status)


@njit(nogil=True, cache=True)
def decode_whole_images(functions, handlers, context, data, modes, starts, sizes, heights, widths, channels,
                        destination, status):
    """``destination[i]`` = image ``i`` as it is stored (all of ``destination.shape[1:3]``),
    for every JPEG and raw image; the others get a non-zero ``status[i]``. Returns how
    many those are. ``destination`` must be C-contiguous."""
    n = modes.shape[0]
    functions_at = np.uint64(functions.ctypes.data)
    context_at = np.uint64(context.ctypes.data)
    data_at = np.uint64(data.ctypes.data)
    out_height = destination.shape[1]
    out_width = destination.shape[2]
    row_bytes = out_width * channels
    flat = destination.reshape(-1)
    image_bytes = out_height * row_bytes
    color_space = _color_space(channels)
    opened = open_decompressor(functions_at, context_at, np.uint64(handlers.ctypes.data)) == OK
    for i in range(n):
        if heights[i] != out_height or widths[i] != out_width:
            status[i] = NOT_HERE
            continue
        if modes[i] == MODE_RAW:
            copy_bytes(flat, i * image_bytes, data, starts[i], image_bytes)
            status[i] = OK
            continue
        if modes[i] != MODE_JPEG or color_space == 0 or not opened:
            status[i] = NOT_HERE
            continue
        code = decode_region(functions_at, context_at, data_at + np.uint64(starts[i]), sizes[i], out_height,
                             out_width, color_space, channels, 1, 0, 0, out_height, out_width,
                             np.uint64(flat.ctypes.data) + np.uint64(i * image_bytes), row_bytes)
        end_image(functions_at, context_at)
        status[i] = code
    if opened:
        close_decompressor(functions_at, context_at)
    return _left_out(status)


#: how a chunk's crop boxes are chosen: given by the caller, random resized crops, centre crops
BOXES_GIVEN, BOXES_RANDOM_RESIZED, BOXES_CENTER = 0, 1, 2
#: a workspace starts with the decompressor's context, then the function and handler tables
_FUNCTIONS = len(FUNCTION_NAMES)
_TABLES_AT = CONTEXT_BYTES
WORKSPACE_HEADER = CONTEXT_BYTES + 8 * 16
_ALIGN = 64


def make_workspace(nbytes: int, functions: np.ndarray, handlers: np.ndarray) -> np.ndarray:
    """A uint8 workspace for :func:`decode_chunk` of at least ``nbytes`` bytes, its header
    holding libjpeg's function and handler tables (one per thread: it holds the decompressor)."""
    workspace = np.zeros(max(int(nbytes), WORKSPACE_HEADER + _ALIGN), np.uint8)
    tables = workspace[_TABLES_AT:WORKSPACE_HEADER].view(np.uint64)
    tables[:len(functions)] = functions
    tables[len(functions):len(functions) + len(handlers)] = handlers
    return workspace


@njit(nogil=True, cache=True)
def _aligned(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


@njit(nogil=True, cache=True)
def _locate_chunk(columns, indices, channels, state):
    """A chunk's images: ``(row, code, largest, modes, heights, widths, starts, sizes)`` from
    ``images.locate_images`` over the field's (mode, height, width, data_ptr) ``columns``."""
    n = indices.shape[0]
    modes = np.empty(n, np.uint8)
    heights = np.empty(n, np.int64)
    widths = np.empty(n, np.int64)
    ptrs = np.empty(n, np.uint64)
    starts = np.empty(n, np.int64)
    sizes = np.empty(n, np.int64)
    row, code, largest = locate_images(columns[0], columns[1], columns[2], columns[3], indices, channels, state,
                                       modes, heights, widths, ptrs, starts, sizes)
    return row, code, largest, modes, heights, widths, starts, sizes


@njit(nogil=True, cache=True)
def decode_chunk(workspace, columns, indices, state, channels, box_kind, box_parameters, seed, max_denom, boxes,
                 destination, status, flip_prob, flip_seed):
    """A chunk of a crop decoder in one call: its metadata gathered and checked
    (``images.locate_images``), its crop boxes drawn (``box_kind``: random resized crops with
    ``box_parameters`` = (scale min, scale max, log ratio min, log ratio max) and ``seed``,
    or centre crops of ``box_parameters[0]`` of the shorter side, written to ``boxes``; or,
    ``BOXES_GIVEN``, ``boxes`` as the caller filled them), and :func:`decode_resized_crops`. ``columns``: the field's (mode, height, width,
    data_ptr) metadata columns; ``workspace``: from :func:`make_workspace`. With
    ``flip_prob > 0`` the chunk is then flipped as ``RandomHorizontalFlip(flip_prob)`` with
    seed ``flip_seed`` would (the same draws, ``kernels/mirror.py``): the pipeline fuses a
    flip that follows the decoder into its call. ``destination`` must then be C-contiguous.

    Returns ``(row, code, needed, left_out)``: a metadata problem of row ``row`` (``code``
    non-zero: nothing was decoded), or a workspace too small (``needed`` bytes; nothing
    was decoded), or how many images were left to the caller (``status``)."""
    n = indices.shape[0]
    row, code, largest, modes, heights, widths, starts, sizes = _locate_chunk(columns, indices, channels, state)
    if code != 0:
        return row, code, 0, 0
    widest = 1
    highest = 1
    for i in range(n):
        widest = max(widest, widths[i])
        highest = max(highest, heights[i])
    out_height = destination.shape[1]
    out_width = destination.shape[2]
    pixels_at = WORKSPACE_HEADER
    resize_at = _aligned(pixels_at + largest)
    area_at = _aligned(resize_at + 4 * resize_area_scratch_size(widest, out_width, channels))
    area_elements = area_box_scratch_size(widest, highest, out_height, out_width, channels) if max_denom > 1 else 1
    needed = _aligned(area_at + 4 * area_elements)
    if workspace.shape[0] < needed:
        return -1, 0, needed, 0
    if box_kind == BOXES_RANDOM_RESIZED:
        random_resized_crop_boxes(heights, widths, indices, seed, box_parameters[0], box_parameters[1],
                                  box_parameters[2], box_parameters[3], boxes)
    elif box_kind == BOXES_CENTER:
        center_crop_boxes(heights, widths, box_parameters[0], boxes)
    tables = workspace[_TABLES_AT:WORKSPACE_HEADER].view(np.uint64)
    left_out = decode_resized_crops(tables[:_FUNCTIONS], tables[_FUNCTIONS:_FUNCTIONS + 3], workspace[:CONTEXT_BYTES].view(np.uint64), state[0],
                                    modes, starts, sizes, heights, widths, boxes, channels, max_denom,
                                    workspace[pixels_at:pixels_at + max(largest, 1)],
                                    workspace[resize_at:area_at].view(np.float32),
                                    workspace[area_at:needed].view(np.float32), destination, status)
    if flip_prob > 0:
        draws = np.empty(n, np.bool_)
        flip_draws(indices, flip_seed, flip_prob, draws)
        for i in range(n):
            draws[i] = draws[i] and status[i] == OK    # the others are flipped after the Python path
        mirror_chosen(destination, draws, np.empty(out_width * channels, np.uint8))
    return -1, 0, 0, left_out


@njit(nogil=True, cache=True)
def decode_views(functions, handlers, context, data, modes, starts, sizes, heights, widths, boxes, channels,
                 pixels, resize_scratch, destination, status):
    """``destination[i, v]`` = the crop ``boxes[v, i]`` (top, left, height, width) of image
    ``i`` resized to ``destination.shape[2:4]``, every view from one decode of the image, for
    every image this kernel can decode; the others get a non-zero ``status[i]``. Returns how
    many those are. ``pixels``: uint8 scratch of the chunk's largest height x width x
    channels; ``resize_scratch``: float32, ``resize_area_scratch_size`` of the widest image."""
    n = modes.shape[0]
    views = boxes.shape[0]
    functions_at = np.uint64(functions.ctypes.data)
    context_at = np.uint64(context.ctypes.data)
    pixels_at = np.uint64(pixels.ctypes.data)
    data_at = np.uint64(data.ctypes.data)
    color_space = _color_space(channels)
    opened = open_decompressor(functions_at, context_at, np.uint64(handlers.ctypes.data)) == OK
    for i in range(n):
        height = heights[i]
        width = widths[i]
        inside = True
        for v in range(views):
            inside = inside and _box_inside(boxes[v, i, 0], boxes[v, i, 1], boxes[v, i, 2], boxes[v, i, 3],
                                            height, width)
        if not inside or height * width * channels > pixels.shape[0]:
            status[i] = NOT_HERE
            continue
        if modes[i] == MODE_RAW:
            image = data[starts[i]:starts[i] + height * width * channels].reshape((height, width, channels))
        elif modes[i] == MODE_JPEG and color_space != 0 and opened:
            code = decode_region(functions_at, context_at, data_at + np.uint64(starts[i]), sizes[i], height, width,
                                 color_space, channels, 1, 0, 0, height, width, pixels_at, width * channels)
            end_image(functions_at, context_at)
            if code != OK:
                status[i] = code
                continue
            image = pixels[:height * width * channels].reshape((height, width, channels))
        else:
            status[i] = NOT_HERE
            continue
        for v in range(views):
            resize_area(image, boxes[v, i, 0], boxes[v, i, 1], boxes[v, i, 2], boxes[v, i, 3], destination[i, v],
                        resize_scratch)
        status[i] = OK
    if opened:
        close_decompressor(functions_at, context_at)
    return _left_out(status)


@njit(nogil=True, cache=True)
def decode_views_chunk(workspace, columns, indices, state, channels, box_parameters, seed, boxes, destination,
                       status):
    """A chunk of a multi-view decoder in one call: metadata gathered and checked, the random
    resized crop of view ``v`` of sample ``i`` drawn from the key ``indices[i] * views + v``
    (``box_parameters`` as for :func:`decode_chunk`; written to ``boxes[v, i]``), and
    :func:`decode_views`. ``destination``: ``(n, views, height, width, channels)``. Returns
    ``(row, code, needed, left_out)`` as :func:`decode_chunk`."""
    n = indices.shape[0]
    views = boxes.shape[0]
    row, code, largest, modes, heights, widths, starts, sizes = _locate_chunk(columns, indices, channels, state)
    if code != 0:
        return row, code, 0, 0
    widest = 1
    for i in range(n):
        widest = max(widest, widths[i])
    pixels_at = WORKSPACE_HEADER
    resize_at = _aligned(pixels_at + largest)
    needed = _aligned(resize_at + 4 * resize_area_scratch_size(widest, destination.shape[3], channels))
    if workspace.shape[0] < needed:
        return -1, 0, needed, 0
    keys = np.empty(n, np.int64)
    for v in range(views):
        for i in range(n):
            keys[i] = np.int64(indices[i]) * views + v
        random_resized_crop_boxes(heights, widths, keys, seed, box_parameters[0], box_parameters[1],
                                  box_parameters[2], box_parameters[3], boxes[v])
    tables = workspace[_TABLES_AT:WORKSPACE_HEADER].view(np.uint64)
    left_out = decode_views(tables[:_FUNCTIONS], tables[_FUNCTIONS:_FUNCTIONS + 3],
                            workspace[:CONTEXT_BYTES].view(np.uint64), state[0], modes, starts, sizes, heights,
                            widths, boxes, channels, workspace[pixels_at:pixels_at + max(largest, 1)],
                            workspace[resize_at:needed].view(np.float32), destination, status)
    return -1, 0, 0, left_out
