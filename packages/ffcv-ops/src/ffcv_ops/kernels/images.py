"""Where a chunk's stored images are, checked against their metadata (see ``ffcv_ops.storage``)."""
from numba import njit

from ..storage import OK, WRONG_SIZE, find

#: the stored modes of an image (docs/format.md): JPEG, raw pixels, PNG
MODE_JPEG, MODE_RAW, MODE_PNG = 0, 1, 2
#: problem code of image metadata that cannot be right: an unknown mode, or no pixels
BAD_IMAGE = 8


@njit(nogil=True, cache=True)
def image_extents(ptrs, samples, modes, heights, widths, channels, state, starts, sizes):
    """Fill ``starts``/``sizes`` with where each image's data is in ``state[0]``; returns
    ``(row, code)`` of the first image whose metadata or data pointer is wrong (an unknown
    mode, a side of 0 pixels, a pointer that ``find`` refuses, raw pixels whose allocation is
    not ``height * width * channels`` bytes), or ``(-1, 0)``."""
    for i in range(ptrs.shape[0]):
        mode = modes[i]
        if (mode != MODE_JPEG and mode != MODE_RAW and mode != MODE_PNG) or heights[i] <= 0 or widths[i] <= 0:
            return i, BAD_IMAGE
        start, size, code = find(ptrs[i], samples[i], state)
        if code != OK:
            sizes[i] = size
            return i, code
        if mode == MODE_RAW and size != heights[i] * widths[i] * channels:
            sizes[i] = size
            return i, WRONG_SIZE
        starts[i] = start
        sizes[i] = size
    return -1, OK
