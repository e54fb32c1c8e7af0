"""Where a chunk's stored images are, checked against their metadata (see ``ffcv_ops.storage``)."""
import numpy as np
from numba import njit

from ..storage import OK, WRONG_SIZE, find_in

#: the stored modes of an image (docs/format.md): JPEG, raw pixels, PNG
MODE_JPEG, MODE_RAW, MODE_PNG = 0, 1, 2
#: problem code of image metadata that cannot be right: an unknown mode, or no pixels
BAD_IMAGE = 8
#: problem code of a stored JPEG or PNG whose own header declares another channel count
WRONG_CHANNELS = 9


@njit(nogil=True, cache=True)
def stored_channels(data, start, size):
    """The channels the JPEG or PNG at ``data[start:start + size]`` declares in its header: a
    PNG's colour type (gray 1, RGB 3, RGBA 4, any other 0), a JPEG's component count; -1 when
    the header cannot be read (the decoder reports that)."""
    if size >= 26 and data[start] == 0x89 and data[start + 1] == 0x50 and data[start + 2] == 0x4E:
        colour = data[start + 25]
        if colour == 0:
            return 1
        if colour == 2:
            return 3
        if colour == 6:
            return 4
        return 0
    if size < 4 or data[start] != 0xFF or data[start + 1] != 0xD8:
        return -1
    at = start + 2
    end = start + size
    while at + 9 < end:
        if data[at] != 0xFF:
            return -1
        marker = data[at + 1]
        if (0xC0 <= marker <= 0xCF) and marker != 0xC4 and marker != 0xC8 and marker != 0xCC:
            return np.int64(data[at + 9])
        at += 2 + (np.int64(data[at + 2]) << 8 | np.int64(data[at + 3]))
    return -1


@njit(nogil=True, cache=True)
def image_extents(ptrs, samples, modes, heights, widths, channels, state, starts, sizes):
    """Fill ``starts``/``sizes`` with where each image's data is in ``state[0]``; returns
    ``(row, code)`` of the first image whose metadata or data pointer is wrong (an unknown
    mode, a side of 0 pixels, a pointer that ``find`` refuses, raw pixels whose allocation is
    not ``height * width * channels`` bytes, a JPEG or PNG declaring another channel count),
    or ``(-1, 0)``."""
    data, page_offsets, shift, alloc_ptrs, alloc_sizes, alloc_samples, data_start, data_end, page_entries = state
    for i in range(ptrs.shape[0]):
        mode = modes[i]
        if (mode != MODE_JPEG and mode != MODE_RAW and mode != MODE_PNG) or heights[i] <= 0 or widths[i] <= 0:
            return i, BAD_IMAGE
        start, size, code = find_in(ptrs[i], samples[i], data, page_offsets, shift, alloc_ptrs, alloc_sizes,
                                    alloc_samples, data_start, data_end, page_entries)
        if code != OK:
            sizes[i] = size
            return i, code
        if mode == MODE_RAW and size != heights[i] * widths[i] * channels:
            sizes[i] = size
            return i, WRONG_SIZE
        if mode != MODE_RAW:
            found = stored_channels(data, start, size)
            if found >= 0 and found != channels:
                sizes[i] = found        # what the stored image declares, for the message
                return i, WRONG_CHANNELS
        starts[i] = start
        sizes[i] = size
    return -1, OK


@njit(nogil=True, cache=True)
def locate_images(mode_column, height_column, width_column, ptr_column, samples, channels, state, modes, heights,
                  widths, ptrs, starts, sizes):
    """A chunk's metadata gathered from the field's columns (``modes``, ``heights``,
    ``widths``, ``ptrs`` of ``samples``) and checked by :func:`image_extents`, in one call:
    returns ``(row, code, bytes of the largest image)``."""
    largest = 0
    for i in range(samples.shape[0]):
        sample = samples[i]
        modes[i] = mode_column[sample]
        heights[i] = height_column[sample]
        widths[i] = width_column[sample]
        ptrs[i] = ptr_column[sample]
        largest = max(largest, heights[i] * widths[i] * channels)
    row, code = image_extents(ptrs, samples, modes, heights, widths, channels, state, starts, sizes)
    return row, code, largest
