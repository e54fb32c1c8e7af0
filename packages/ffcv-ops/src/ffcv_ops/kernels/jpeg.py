"""Decoding JPEGs with libjpeg(-turbo) from compiled code, without the GIL.

The kernels drive libjpeg's decompressor through its C API (the library Pillow ships; see
``ffcv_ops.libjpeg`` for how it is found and checked), so that a chunk's whole loop of
decode, crop and resize is one call from Python. Two things the API offers are used:

- **Partial decoding.** Only the rows and columns of the crop are decoded:
  ``jpeg_crop_scanline`` narrows the columns (to the JPEG's block grid) and
  ``jpeg_skip_scanlines`` skips the rows above the crop; decoding stops after its last row.
- **Scaled decoding.** libjpeg can decode at 1/2, 1/4 or 1/8 of the size in its inverse DCT
  (``scale_denom``); a crop that will be shrunk by 2x or more is decoded at the largest of
  these scales that keeps it at least as big as the output, and resized from there.

Errors: libjpeg reports a fatal error by calling the error manager's ``error_exit``, which
must not return; here it jumps back (``longjmp``) to the ``set_jump`` in
:func:`decode_region`, which reports ``FAILED``. Warnings (corrupt data libjpeg would paper
over) jump back too. A sample that fails here is decoded again by the decoder's Python path,
which says what is wrong with it, or decodes it as leniently as before.

The context of a decompressor is one block of memory (``CONTEXT_BYTES``, owned by the
caller as a numpy array) laid out as below; the field offsets are those of libjpeg's
``jpeg_decompress_struct`` for its ABI version 62 on 64-bit platforms (libjpeg-turbo keeps
that ABI stable; ``ffcv_ops.libjpeg`` checks the library's version and struct size before
using it, and the tests compare every decode with simplejpeg's).
"""
import numpy as np
from numba import cfunc, njit, types

from .images import MODE_JPEG, MODE_RAW
from .native import JUMP_BUFFER_BYTES, c_function, load_u32, load_u64, long_jump, set_jump, store_u32, store_u64

#: libjpeg's ABI version whose struct layout this module knows, and that struct's size
JPEG_LIB_VERSION = 62
DECOMPRESS_STRUCT_BYTES = 632

# -- the context block: [decompress struct | error manager | jmp_buf | row pointer, crop] --
CINFO = 0
ERROR_MANAGER = 1024
JUMP_BUFFER = ERROR_MANAGER + 256          # the error handlers find it from the error manager
ROW_POINTER = JUMP_BUFFER + JUMP_BUFFER_BYTES
CROP_X = ROW_POINTER + 8                    # jpeg_crop_scanline's in/out xoffset and width
CROP_WIDTH = CROP_X + 4
CONTEXT_BYTES = 2048

# -- jpeg_decompress_struct fields (ABI 62, LP64) --
_ERR = 0
_IMAGE_WIDTH = 48
_IMAGE_HEIGHT = 52
_OUT_COLOR_SPACE = 64
_SCALE_NUM = 68
_SCALE_DENOM = 72
_DCT_METHOD = 96
_OUTPUT_WIDTH = 136
_OUTPUT_HEIGHT = 140
_OUTPUT_SCANLINE = 168
# -- jpeg_error_mgr fields --
_ERROR_EXIT = 0
_EMIT_MESSAGE = 8
_OUTPUT_MESSAGE = 16
MSG_CODE = 40
MSG_PARAMETERS = 44

#: libjpeg's J_COLOR_SPACE values for the output: one channel, three
JCS_GRAYSCALE, JCS_RGB = 1, 2
_JDCT_ISLOW = 0

#: the order of the functions' addresses in the table ``ffcv_ops.libjpeg`` makes
FUNCTION_NAMES = ('jpeg_std_error', 'jpeg_CreateDecompress', 'jpeg_destroy_decompress', 'jpeg_mem_src',
                  'jpeg_read_header', 'jpeg_start_decompress', 'jpeg_read_scanlines',
                  'jpeg_abort_decompress', 'jpeg_crop_scanline', 'jpeg_skip_scanlines')
(_STD_ERROR, _CREATE, _DESTROY, _MEM_SRC, _READ_HEADER, _START, _READ_SCANLINES, _ABORT, _CROP_SCANLINE,
 _SKIP_SCANLINES) = (8 * np.uint64(i) for i in range(len(FUNCTION_NAMES)))

_std_error = c_function('ptr', 'ptr')
_create = c_function('void', 'ptr', 'i32', 'i64')
_destroy = c_function('void', 'ptr')
_mem_src = c_function('void', 'ptr', 'ptr', 'i64')
_read_header = c_function('i32', 'ptr', 'i32')
_start = c_function('i32', 'ptr')
_read_scanlines = c_function('u32', 'ptr', 'ptr', 'u32')
_abort = c_function('void', 'ptr')
_crop_scanline = c_function('void', 'ptr', 'ptr', 'ptr')
_skip_scanlines = c_function('u32', 'ptr', 'u32')

#: what :func:`decode_region` and the chunk kernels report per sample
OK, FAILED, MISMATCH, NOT_HERE = 0, 1, 2, 3


def error_handlers() -> np.ndarray:
    """The addresses of the compiled error manager callbacks (``error_exit``,
    ``emit_message``, ``output_message``), compiled or loaded from numba's cache on first use."""
    global _HANDLERS
    if _HANDLERS is None:
        @cfunc(types.void(types.uint64), nopython=True, cache=True)
        def error_exit(cinfo):
            long_jump(load_u64(cinfo + _ERR) + np.uint64(JUMP_BUFFER - ERROR_MANAGER))

        @cfunc(types.void(types.uint64, types.int32), nopython=True, cache=True)
        def emit_message(cinfo, level):
            if level < 0:   # a warning: the data is corrupt; libjpeg would go on with gray blocks
                long_jump(load_u64(cinfo + _ERR) + np.uint64(JUMP_BUFFER - ERROR_MANAGER))

        @cfunc(types.void(types.uint64), nopython=True, cache=True)
        def output_message(cinfo):
            pass            # libjpeg's default prints to stderr

        _HANDLERS = np.array([error_exit.address, emit_message.address, output_message.address], np.uint64)
    return _HANDLERS


_HANDLERS = None


@njit(nogil=True, cache=True)
def _create_guarded(functions, context, handlers, struct_bytes):
    if set_jump(context + np.uint64(JUMP_BUFFER)) != 0:
        return FAILED
    _create(load_u64(functions + _CREATE), context + np.uint64(CINFO), JPEG_LIB_VERSION, struct_bytes)
    return OK


@njit(nogil=True, cache=True)
def open_decompressor(functions, context, handlers, struct_bytes=DECOMPRESS_STRUCT_BYTES):
    """Make a decompressor in the context block at address ``context``: OK, or FAILED
    (the library refuses the ABI version or the struct size; ``MSG_CODE`` and
    ``MSG_PARAMETERS`` of the error manager say why)."""
    error_manager = context + np.uint64(ERROR_MANAGER)
    _std_error(load_u64(functions + _STD_ERROR), error_manager)
    store_u64(error_manager + np.uint64(_ERROR_EXIT), load_u64(handlers))
    store_u64(error_manager + np.uint64(_EMIT_MESSAGE), load_u64(handlers + np.uint64(8)))
    store_u64(error_manager + np.uint64(_OUTPUT_MESSAGE), load_u64(handlers + np.uint64(16)))
    store_u64(context + np.uint64(CINFO + _ERR), error_manager)
    return _create_guarded(functions, context, handlers, struct_bytes)


@njit(nogil=True, cache=True)
def close_decompressor(functions, context):
    _destroy(load_u64(functions + _DESTROY), context + np.uint64(CINFO))


@njit(nogil=True, cache=True)
def decode_region(functions, context, data, size, height, width, color_space, channels, denom, top, left, rows,
                  columns, out, out_stride):
    """Decode rows ``top:top + rows`` and at least columns ``left:left + columns`` of the
    JPEG at address ``data`` (``size`` bytes), decoded at 1/``denom`` scale in ``color_space``
    (``channels`` bytes a pixel), into rows of ``out_stride`` bytes from address ``out``. Returns OK (the decoded rows then start at
    column ``load_u32(context + CROP_X) <= left``), FAILED (libjpeg's error or warning), or
    MISMATCH (the JPEG is not ``width`` x ``height`` pixels, or the region is not in it).

    Only numbers here (see ``kernels.native.set_jump``). The caller resets the decompressor
    with :func:`end_image` after every image, whatever this returned."""
    cinfo = context + np.uint64(CINFO)
    if set_jump(context + np.uint64(JUMP_BUFFER)) != 0:
        return FAILED
    _mem_src(load_u64(functions + _MEM_SRC), cinfo, data, size)
    _read_header(load_u64(functions + _READ_HEADER), cinfo, 1)
    if load_u32(cinfo + np.uint64(_IMAGE_WIDTH)) != width or load_u32(cinfo + np.uint64(_IMAGE_HEIGHT)) != height:
        return MISMATCH
    store_u32(cinfo + np.uint64(_OUT_COLOR_SPACE), color_space)
    store_u32(cinfo + np.uint64(_SCALE_NUM), 1)
    store_u32(cinfo + np.uint64(_SCALE_DENOM), denom)
    store_u32(cinfo + np.uint64(_DCT_METHOD), _JDCT_ISLOW)
    _start(load_u64(functions + _START), cinfo)
    out_width = load_u32(cinfo + np.uint64(_OUTPUT_WIDTH))
    out_height = load_u32(cinfo + np.uint64(_OUTPUT_HEIGHT))
    if (out_width != (width + denom - 1) // denom or out_height != (height + denom - 1) // denom
            or top < 0 or left < 0 or rows <= 0 or columns <= 0 or top + rows > out_height
            or left + columns > out_width or channels * out_width > out_stride):
        return MISMATCH
    store_u32(context + np.uint64(CROP_X), left)
    store_u32(context + np.uint64(CROP_WIDTH), columns)
    if left > 0 or columns < out_width:
        _crop_scanline(load_u64(functions + _CROP_SCANLINE), cinfo, context + np.uint64(CROP_X),
                       context + np.uint64(CROP_WIDTH))
    else:
        store_u32(context + np.uint64(CROP_WIDTH), out_width)
    if top > 0:
        _skip_scanlines(load_u64(functions + _SKIP_SCANLINES), cinfo, top)
    row_pointer = context + np.uint64(ROW_POINTER)
    for row in range(rows):
        store_u64(row_pointer, out + np.uint64(row) * np.uint64(out_stride))
        if _read_scanlines(load_u64(functions + _READ_SCANLINES), cinfo, row_pointer, 1) != 1:
            return FAILED
    return OK


@njit(nogil=True, cache=True)
def end_image(functions, context):
    """Reset the decompressor for the next image (whatever state the last one left it in)."""
    _abort(load_u64(functions + _ABORT), context + np.uint64(CINFO))


@njit(nogil=True, cache=True)
def scale_for(crop_height, crop_width, out_height, out_width, max_denom):
    """The largest of 1, 2, 4, 8 (at most ``max_denom``) by which the crop can be divided
    and still be at least the output's size in both directions."""
    denom = 1
    while (denom * 2 <= max_denom and crop_height >= out_height * denom * 2
           and crop_width >= out_width * denom * 2):
        denom *= 2
    return denom
