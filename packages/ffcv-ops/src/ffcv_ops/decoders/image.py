"""Image decoders: whole images, random resized crops, center crops.

Each worker thread decodes its chunk of the batch in one compiled call without the GIL
(``kernels/image_chunks.py``): JPEGs through libjpeg-turbo's C API (``ffcv_ops.libjpeg``),
only the part of each image its crop needs and, for crops shrunk 2x or more, at a reduced
scale; raw images straight from storage; each crop resized into its row of the batch. The
crop boxes come from a compiled kernel drawing from (seed, sample index).

What the compiled path leaves (PNG, four channels, a JPEG libjpeg refuses or warns
about, every image when the library is not usable) goes through the per-image path:
simplejpeg into a scratch buffer reused for the chunk, else OpenCV, and ``cv2.resize``
into the batch row. It decodes leniently what can be decoded and names the sample
otherwise, as before.
"""
import math
import threading
from dataclasses import replace

import cv2
import numpy as np
import simplejpeg
from ffcv_format import FormatError, ImageField

from ..allocation_query import AllocationQuery
from ..kernels.copy import gather_fixed
from ..kernels.crop import center_crop_boxes, random_resized_crop_boxes
from ..kernels.image_chunks import (BOXES_CENTER, BOXES_GIVEN, BOXES_RANDOM_RESIZED, decode_chunk,
                                    decode_whole_images, make_workspace)
from ..kernels.images import BAD_IMAGE, MODE_JPEG, MODE_PNG, MODE_RAW, WRONG_CHANNELS, locate_images
from ..kernels.augment import flip_draws
from ..kernels.chunk_ring import claim_and_decode
from ..kernels.jpeg import CONTEXT_BYTES
from ..kernels.mirror import mirror_chosen
from ..libjpeg import libjpeg
from ..storage import WRONG_SIZE, sample_bits, storage_error
from .base import Decoder
DEFAULT_CROP_RATIO = 224 / 256
CONTEXT_WORDS = CONTEXT_BYTES // 8
#: a chunk's scratch buffer (its largest image) up to this size is allocated from the
#: metadata as it is; beyond, the images' own headers must confirm their size first
_TRUSTED_SCRATCH = 64 << 20
_IMREAD = {1: cv2.IMREAD_GRAYSCALE, 3: getattr(cv2, 'IMREAD_COLOR_RGB', cv2.IMREAD_COLOR),
           4: cv2.IMREAD_UNCHANGED}
_NATIVE_RGB = hasattr(cv2, 'IMREAD_COLOR_RGB')
_SIMPLEJPEG_SPACE = {1: 'GRAY', 3: 'RGB'}


def _check_size(name, value):
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (height, width), got {value!r}") from None
    if h <= 0 or w <= 0 or tuple(value) != (h, w):
        raise ValueError(f"{name} must be two positive integers (height, width), got {value!r}")
    return h, w


def thread_workspace(local, library):
    """This thread's workspace for the JPEG kernels (``local.workspace``: it holds a
    decompressor), made on first use."""
    workspace = getattr(local, 'workspace', None)
    if workspace is None:
        workspace = local.workspace = make_workspace(1 << 20, library.functions, library.handlers)
    return workspace


def thread_chunk_scratch(local, n):
    """This thread's ``(boxes, status)`` arrays of a chunk's crop decode, at least ``n`` rows
    (kept per thread: no allocation per chunk)."""
    if getattr(local, 'status', None) is None or local.status.shape[0] < n:
        local.boxes, local.status = np.empty((n, 4), np.int64), np.empty(n, np.uint8)
    return local.boxes, local.status


def run_in_workspace(local, library, kernel, *arguments):
    """``kernel(workspace, *arguments)`` (``kernels.image_chunks.decode_chunk`` or
    ``decode_views_chunk``) with this thread's workspace (``thread_workspace``), grown while
    the kernel answers that it needs more bytes. Returns the kernel's ``(row, code, left_out)``."""
    workspace = thread_workspace(local, library)
    while True:
        row, code, needed, left_out = kernel(workspace, *arguments)
        if not needed:
            return row, code, left_out
        workspace = local.workspace = make_workspace(needed + needed // 4, library.functions, library.handlers)


class _ImageDecoder(Decoder):
    compiled = False
    #: (metadata, its columns as views made once): see ``_locate``
    _columns = None

    def _locate(self, indices, storage_state):
        """Where a chunk's images are, checked: modes, heights, widths, data starts and sizes
        (arrays), and the bytes of its largest image.

        The metadata columns are views on the file: nothing is copied for the whole field
        (which for 10^8 samples would be gigabytes at every start)."""
        columns = self._metadata_columns()
        n = indices.shape[0]
        modes = np.empty(n, columns[0].dtype)
        heights = np.empty(n, np.int64)
        widths = np.empty(n, np.int64)
        ptrs = np.empty(n, columns[3].dtype)
        starts = np.empty(n, np.int64)
        sizes = np.empty(n, np.int64)
        channels = self.channels
        row, code, largest = locate_images(*columns, indices, channels, storage_state, modes, heights, widths, ptrs,
                                           starts, sizes)
        if code:
            raise self._image_error(row, code, indices, ptrs, modes, heights, widths, sizes, storage_state)
        if largest > _TRUSTED_SCRATCH:
            self._check_large_images(indices, modes, heights, widths, starts, sizes, storage_state)
        return modes, heights, widths, starts, sizes, largest

    def _gather(self, indices, storage_state):
        """``_locate`` for the per-image Python loop: modes, starts and sizes as lists, heights
        and widths as arrays, and a scratch buffer big enough for the largest image."""
        modes, heights, widths, starts, sizes, largest = self._locate(indices, storage_state)
        return modes.tolist(), heights, widths, starts.tolist(), sizes.tolist(), np.empty(largest, np.uint8)

    def _image_error(self, row, code, indices, ptrs, modes, heights, widths, sizes, state):
        sample = int(indices[row])
        if code == BAD_IMAGE:
            return FormatError(f"sample {sample}: its image metadata is not possible: mode {int(modes[row])}, "
                               f"{int(widths[row])}x{int(heights[row])} pixels (corrupted file? `ffcv verify FILE` "
                               f"lists every problem)")
        if code == WRONG_CHANNELS:
            return FormatError(f"sample {sample}: the stored image declares {int(sizes[row]) or 'an unexpected number of'}"
                               f" channel(s), the field has {self.channels} (corrupted file?)")
        expected = int(heights[row] * widths[row]) * self.channels if code == WRONG_SIZE else None
        return storage_error(code, sample, ptrs[row], sizes[row], expected, state)

    def _check_large_images(self, indices, modes, heights, widths, starts, sizes, state):
        """Images of many pixels are legal, but a corrupt width or height would make the chunk's
        scratch buffer huge: before allocating it, the JPEGs that ask for more than
        ``_TRUSTED_SCRATCH`` bytes must say in their own header that they are that big."""
        data = state[0]
        for i in np.flatnonzero(heights * widths * self.channels > _TRUSTED_SCRATCH).tolist():
            if modes[i] == MODE_RAW:
                continue          # raw pixels: their allocation has exactly that size (checked)
            start, size = int(starts[i]), int(sizes[i])
            try:
                height, width = simplejpeg.decode_jpeg_header(data[start:start + size])[:2]
            except ValueError:
                height, width = _png_size(data[start:start + size])
            if (height, width) != (int(heights[i]), int(widths[i])):
                raise FormatError(f"sample {int(indices[i])}: its metadata says its image is {int(widths[i])}x"
                                  f"{int(heights[i])} pixels, the stored image is {width}x{height} (corrupted file?)")

    def _metadata_columns(self):
        """The metadata's (mode, height, width, data_ptr) columns, as views made once per
        metadata (a structured array's field is a new view each time it is asked for)."""
        meta = self.metadata
        if self._columns is None or self._columns[0] is not meta:
            self._columns = (meta, (meta['mode'], meta['height'], meta['width'], meta['data_ptr']))
        return self._columns[1]

    @property
    def channels(self):
        return int(getattr(self.field, 'channels', 3))

    def _decode_one(self, data, start, size, mode, height, width, channels, scratch=None):
        """One stored image as an HxWxC view or array."""
        if mode == MODE_RAW:
            return data[start:start + height * width * channels].reshape(height, width, channels)
        if mode != MODE_JPEG and mode != MODE_PNG:
            raise ValueError(f"unknown image mode {mode}")
        if mode == MODE_JPEG and scratch is not None and channels in _SIMPLEJPEG_SPACE:
            try:
                image = simplejpeg.decode_jpeg(data[start:start + size], _SIMPLEJPEG_SPACE[channels],
                                               buffer=scratch)
            except ValueError:
                image = None   # not something libjpeg-turbo decodes cleanly: let OpenCV try
            if image is not None:
                if image.shape[0] != height or image.shape[1] != width:
                    raise ValueError(f"a stored image is {image.shape[1]}x{image.shape[0]}, its metadata "
                                     f"says {width}x{height} (corrupted file?)")
                return image
        image = cv2.imdecode(data[start:start + size], _IMREAD[channels])
        if image is None:
            raise ValueError("a stored image does not decode (corrupted file?)")
        if image.ndim == 2:
            image = image[:, :, None]
        elif channels == 3 and not _NATIVE_RGB:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        elif channels == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
        if image.shape[0] != height or image.shape[1] != width:
            raise ValueError(f"a stored image is {image.shape[1]}x{image.shape[0]}, its metadata says "
                             f"{width}x{height} (corrupted file?)")
        return image


class SimpleRGBImageDecoder(_ImageDecoder):
    """Whole images, as ``(batch, height, width, channels)`` uint8. Every image of the
    field must have the same size (otherwise crop with one of the other decoders)."""

    def declare_state_and_memory(self, previous_state):
        self._require_field(ImageField)
        heights, widths = self.metadata['height'], self.metadata['width']
        if heights.size == 0:
            shape = (0, 0, self.channels)
        else:
            h, w = int(heights.max()), int(widths.max())
            if int(heights.min()) != h or int(widths.min()) != w:
                sizes, counts = np.unique(np.stack([widths, heights], axis=1), axis=0, return_counts=True)
                rare = sizes[np.argmin(counts)]
                sample = int(np.flatnonzero((widths == rare[0]) & (heights == rare[1]))[0])
                raise TypeError(   # FFCV 1.0's error type
                    f"SimpleRGBImageDecoder needs images of one size; this field has {len(sizes)} sizes, from "
                    f"{int(widths.min())}x{int(heights.min())} to {w}x{h} (e.g. sample {sample} is "
                    f"{int(rare[0])}x{int(rare[1])}): use RandomResizedCropRGBImageDecoder or "
                    f"CenterCropRGBImageDecoder (or, if the file should hold one size, it is corrupt: "
                    f"`ffcv verify FILE`)")
            if h == 0 or w == 0:
                raise FormatError(f"sample {int(np.argmin(heights.astype(np.int64) * widths))}: its image "
                                  f"metadata says 0 pixels (corrupted file?)")
            raw = self.metadata['mode'] == MODE_RAW
            if raw.any() and self.page_size is not None and h * w * self.channels > self.page_size:
                raise FormatError(f"sample {int(np.flatnonzero(raw)[0])}: its raw image of {w}x{h} pixels would "
                                  f"need {h * w * self.channels} bytes, more than a page ({self.page_size}) "
                                  f"(corrupted file?)")
            shape = (h, w, self.channels)
        return (replace(previous_state, jit_mode=True, shape=shape, dtype=np.dtype('u1')),
                AllocationQuery(shape, np.dtype('u1')))

    def generate_code(self):
        channels = self.channels
        decode_one = self._decode_one
        gather = self._gather

        meta = self.metadata
        h, w = (int(meta['height'][0]), int(meta['width'][0])) if meta.size else (0, 0)
        raw_bytes = h * w * channels
        checked = sample_bits(meta.size)

        locate = self._locate
        library = libjpeg()

        def decode(indices, destination, metadata, storage_state, seed=0):
            n = indices.shape[0]
            if n and destination.flags.c_contiguous and (meta['mode'][indices] == MODE_RAW).all():
                # raw images (CIFAR): one compiled copy for the whole chunk
                ptrs = meta['data_ptr'][indices]
                row, code = gather_fixed(ptrs, indices, raw_bytes, storage_state,
                                         destination[:n].reshape(n, raw_bytes), checked)
                if code:
                    raise storage_error(code, indices[row], ptrs[row], None, raw_bytes, storage_state)
                return destination
            data = storage_state[0]
            if library is not None and n and destination.flags.c_contiguous:
                # the whole chunk in one compiled call, each JPEG decoded straight into its row
                modes, heights, widths, starts, sizes, largest = locate(indices, storage_state)
                status = np.empty(n, np.uint8)
                if not decode_whole_images(library.functions, library.handlers, np.empty(CONTEXT_WORDS, np.uint64),
                                           data, modes, starts, sizes, heights, widths, channels, destination,
                                           status):
                    return destination
                rows = np.flatnonzero(status)
                indices_left = indices[rows]
            else:
                rows, indices_left = np.arange(n), indices
            # the per-image path: PNG, RGBA, what the compiled kernel leaves out, and every image
            # when libjpeg is not usable (ffcv_ops.libjpeg.libjpeg_status() says why)
            modes, heights, widths, starts, sizes, scratch = gather(indices_left, storage_state)
            heights, widths = heights.tolist(), widths.tolist()
            for k, i in enumerate(rows.tolist()):
                try:
                    destination[i] = decode_one(data, starts[k], sizes[k], modes[k], heights[k], widths[k],
                                                channels, scratch)
                except ValueError as e:
                    raise FormatError(f"sample {int(indices[i])}: {e}") from e
            return destination

        return decode


class ResizedCropRGBImageDecoder(_ImageDecoder):
    """Decodes, crops a box per image and resizes it into ``output_size`` (height, width):
    the base of :class:`RandomResizedCropRGBImageDecoder` and :class:`CenterCropRGBImageDecoder`.

    ``output_size`` may be changed between epochs (progressive resizing): the loader
    reallocates its buffers at the next epoch; nothing is recompiled.

    A subclass chooses the boxes by overriding ``_boxes``, or, as in FFCV 1.0, with a
    ``get_crop_generator`` property: a function ``(height, width, scale, ratio) -> (top,
    left, crop_height, crop_width)`` (compiled with numba; its ``np.random`` draws are
    reseeded per chunk from the loader's seed), called with the decoder's ``scale`` and
    ``ratio`` attributes.

    JPEGs are decoded from compiled code, one call per chunk (``ffcv_ops.libjpeg``), only
    the part each crop needs. With ``scaled_decoding`` (the default), a crop that will be
    shrunk by 2x or more is decoded at 1/2, 1/4 or 1/8 scale by libjpeg's inverse DCT and
    resized from there: faster, and as close to the full decode as a change of resize
    filter would be (docs/benchmarks.md has the measurement). ``scaled_decoding=False``
    decodes at full size, as FFCV 1.0 does.
    """

    interpolation = cv2.INTER_AREA
    #: FFCV 1.0's extension point (see the class docstring); None: the boxes come from ``_boxes``
    get_crop_generator = None
    #: class default, for subclasses (FFCV 1.0 ones) that do not pass it on
    scaled_decoding = True

    def __init__(self, output_size, *, scaled_decoding=True):
        super().__init__()
        self.output_size = output_size
        self.scaled_decoding = bool(scaled_decoding)

    def _scaled_decoding_repr(self):
        return '' if self.scaled_decoding else ', scaled_decoding=False'

    @property
    def output_size(self):
        return self._output_size

    @output_size.setter
    def output_size(self, value):
        self._output_size = _check_size('output_size', value)

    def declare_state_and_memory(self, previous_state):
        self._require_field(ImageField)
        shape = (*self.output_size, self.channels)
        return (replace(previous_state, jit_mode=True, shape=shape, dtype=np.dtype('u1')),
                AllocationQuery(shape, np.dtype('u1')))

    def _boxes(self, heights, widths, indices, seed, out):
        raise NotImplementedError(f"{type(self).__name__} must define _boxes() or get_crop_generator")

    def fused_with(self, op):
        """The decoder's code fused with ``op``, the operation after it, or None.
        ``RandomHorizontalFlip`` is fused into the compiled call of a decoder with built-in
        boxes (after ``generate_code``): the fused code takes the flip's seed as a sixth
        argument and gives what the two would one after the other."""
        from ..transforms.augment import RandomHorizontalFlip   # transforms import the decoders
        one_call = getattr(self, '_one_call', None)
        if one_call is None or type(op) is not RandomHorizontalFlip or self.channels > 4:
            return None
        flip_prob = op.flip_prob
        op_code = op.generate_code()   # for a destination the kernel cannot flip in place

        def decode_and_flip(indices, destination, metadata, storage_state, seed, flip_seed):
            if not destination.flags.c_contiguous:
                one_call(indices, destination, storage_state, seed)
                return op_code(destination, None, indices, flip_seed)
            return one_call(indices, destination, storage_state, seed, flip_prob, flip_seed)

        return decode_and_flip

    def chunk_claimer(self, fused_op=None):
        """``claim(ring, storage_state, seed, fused_seed)`` that claims and decodes the chunks of
        a ``ChunkRing`` in one compiled call (``kernels.chunk_ring``), or None where this
        decoder has no such call (after ``generate_code``). ``fused_op``: the operation
        ``fused_with`` fused into the decoder's call (a ``RandomHorizontalFlip``), if any."""
        claim_chunks = getattr(self, '_claim_chunks', None)
        if claim_chunks is None:
            return None
        if fused_op is None:
            def claim(ring, storage_state, seed, fused_seed=0):
                return claim_chunks(ring, storage_state, seed)
            return claim
        flip_prob = fused_op.flip_prob

        def claim_and_flip(ring, storage_state, seed, fused_seed):
            return claim_chunks(ring, storage_state, seed, flip_prob, fused_seed)

        return claim_and_flip

    def _box_rule(self):
        """(kind, parameters) of the boxes for ``kernels.image_chunks.decode_chunk``, which draws
        them itself; ``BOXES_GIVEN``: ``_boxes`` is called from Python."""
        return BOXES_GIVEN, None

    def generate_code(self):
        channels = self.channels
        decode_one = self._decode_one
        generator = self.get_crop_generator
        if generator is None:
            boxes_of = self._boxes
        else:
            from ..adapter import crop_boxes_from_generator
            boxes_of = crop_boxes_from_generator(generator, getattr(self, 'scale', None),
                                                 getattr(self, 'ratio', None))
        interpolation = self.interpolation
        locate = self._locate
        library = libjpeg() if interpolation == cv2.INTER_AREA else None
        max_denom = 8 if self.scaled_decoding else 1

        def decode_each(indices, rows, destination, data, modes, heights, widths, starts, sizes, boxes, scratch):
            """The per-image path: PNG, RGBA, what the compiled kernel leaves out, and every image
            when libjpeg is not usable (ffcv_ops.libjpeg.libjpeg_status() says why)."""
            size = (destination.shape[2], destination.shape[1])
            # per image: one decode and one resize call, both without the GIL; the Python
            # around them is kept to plain ints and slices (it runs under the GIL)
            for i in rows:
                top, left, h, w = boxes[i].tolist()
                try:
                    image = decode_one(data, int(starts[i]), int(sizes[i]), int(modes[i]), int(heights[i]),
                                       int(widths[i]), channels, scratch)
                except ValueError as e:
                    raise FormatError(f"sample {int(indices[i])}: {e}") from e
                if channels == 1:
                    cv2.resize(image[top:top + h, left:left + w, 0], size, dst=destination[i, :, :, 0],
                               interpolation=interpolation)
                else:
                    cv2.resize(image[top:top + h, left:left + w], size, dst=destination[i],
                               interpolation=interpolation)

        box_kind, box_parameters = self._box_rule() if generator is None else (BOXES_GIVEN, None)
        if box_parameters is None:
            box_parameters = np.zeros(4)   # unused by the kernel: the boxes come filled in
        columns = self._metadata_columns()
        workspaces = threading.local()    # one per worker thread: it holds a decompressor

        def decode_in_one_call(indices, destination, storage_state, seed, flip_prob=0.0, flip_seed=0, boxes=None):
            """Metadata, boxes (unless given), decode, crop, resize (and a fused flip: see
            ``fused_with``) in one compiled call."""
            n = indices.shape[0]
            own_boxes, status = thread_chunk_scratch(workspaces, n)
            if boxes is None:
                boxes = own_boxes[:n]
            status = status[:n]
            row, code, left_out = run_in_workspace(workspaces, library, decode_chunk, columns, indices,
                                                   storage_state, channels, box_kind, box_parameters,
                                                   np.uint64(seed), max_denom, boxes, destination, status,
                                                   flip_prob, np.uint64(flip_seed))
            if code or left_out:   # a problem to name (raised by locate), or images for the Python path
                modes, heights, widths, starts, sizes, largest = locate(indices, storage_state)
                rows = np.flatnonzero(status)
                decode_each(indices, rows.tolist(), destination, storage_state[0], modes, heights, widths, starts,
                            sizes, boxes, np.empty(largest, np.uint8))
                if flip_prob > 0:      # the flip the kernel left to these rows
                    draws = np.zeros(n, np.bool_)
                    flip_draws(indices, np.uint64(flip_seed), flip_prob, draws)
                    chosen = np.zeros(n, np.bool_)
                    chosen[rows] = draws[rows]
                    mirror_chosen(destination, chosen, np.empty(destination.shape[2] * channels, np.uint8))
            return destination

        self._one_call = decode_in_one_call if library is not None and box_kind != BOXES_GIVEN else None

        def claim_chunks(ring, storage_state, seed, flip_prob=0.0, flip_seed=0):
            """``kernels.chunk_ring.claim_and_decode`` with this thread's workspace and scratch."""
            boxes, status = thread_chunk_scratch(workspaces, ring.chunk_size)
            return claim_and_decode(ring.control, ring.tasks, ring.done, ring.chunks, ring.batch_indices,
                                    ring.destinations, thread_workspace(workspaces, library), columns, storage_state,
                                    channels, box_kind, box_parameters, np.uint64(seed), max_denom, boxes, status,
                                    flip_prob, np.uint64(flip_seed))

        self._claim_chunks = claim_chunks if self._one_call is not None else None

        def decode(indices, destination, metadata, storage_state, seed=0):
            n = indices.shape[0]
            if library is not None and n and box_kind != BOXES_GIVEN:
                return decode_in_one_call(indices, destination, storage_state, seed)
            modes, heights, widths, starts, sizes, largest = locate(indices, storage_state)
            boxes = np.empty((n, 4), dtype=np.int64)
            boxes_of(heights, widths, indices, seed, boxes)   # from Python: a generator or a subclass's rule
            if library is not None and n:
                return decode_in_one_call(indices, destination, storage_state, seed, boxes=boxes)
            decode_each(indices, range(n), destination, storage_state[0], modes, heights, widths, starts, sizes,
                        boxes, np.empty(largest, np.uint8))
            return destination

        return decode


class RandomResizedCropRGBImageDecoder(ResizedCropRGBImageDecoder):
    """Random resized crops (Inception-style), resized to ``output_size``.

    The crop has ``scale`` (fraction of the image's area) and ``ratio`` (aspect) drawn per
    sample from (seed, epoch, sample index): same seed, same crops, whatever the number of
    worker threads.

    >>> RandomResizedCropRGBImageDecoder((224, 224))
    RandomResizedCropRGBImageDecoder(output_size=(224, 224), scale=(0.08, 1.0), ratio=(0.75, 1.3333333333333333))
    """

    def __init__(self, output_size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), *, scaled_decoding=True):
        super().__init__(output_size, scaled_decoding=scaled_decoding)
        scale = tuple(float(s) for s in scale)
        ratio = tuple(float(r) for r in ratio)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be (min, max) with 0 < min <= max, got {scale!r}")
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must be (min, max) with 0 < min <= max, got {ratio!r}")
        self.scale, self.ratio = scale, ratio

    def _boxes(self, heights, widths, indices, seed, out):
        random_resized_crop_boxes(heights, widths, indices.astype(np.int64), np.uint64(seed),
                                  self.scale[0], self.scale[1],
                                  math.log(self.ratio[0]), math.log(self.ratio[1]), out)

    def _box_rule(self):
        if type(self)._boxes is not RandomResizedCropRGBImageDecoder._boxes:
            return BOXES_GIVEN, None      # a subclass with its own rule
        return BOXES_RANDOM_RESIZED, np.array([self.scale[0], self.scale[1], math.log(self.ratio[0]),
                                               math.log(self.ratio[1])])

    def __repr__(self):
        return (f"{type(self).__name__}(output_size={self.output_size}, scale={self.scale}, "
                f"ratio={self.ratio}{self._scaled_decoding_repr()})")


class CenterCropRGBImageDecoder(ResizedCropRGBImageDecoder):
    """The central square whose side is ``int(ratio * shorter side)`` (FFCV 1.0's rule),
    resized to ``output_size``.

    >>> CenterCropRGBImageDecoder((224, 224), ratio=224 / 256)
    CenterCropRGBImageDecoder(output_size=(224, 224), ratio=0.875)
    """

    def __init__(self, output_size, ratio=DEFAULT_CROP_RATIO, *, scaled_decoding=True):
        super().__init__(output_size, scaled_decoding=scaled_decoding)
        if not 0 < float(ratio) <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio!r}")
        self.ratio = float(ratio)

    def _boxes(self, heights, widths, indices, seed, out):
        center_crop_boxes(heights, widths, self.ratio, out)

    def _box_rule(self):
        if type(self)._boxes is not CenterCropRGBImageDecoder._boxes:
            return BOXES_GIVEN, None
        return BOXES_CENTER, np.array([self.ratio, 0.0, 0.0, 0.0])

    def __repr__(self):
        return (f"{type(self).__name__}(output_size={self.output_size}, ratio={self.ratio}"
                f"{self._scaled_decoding_repr()})")


def _png_size(data):
    """(height, width) from a PNG's header; (0, 0) when ``data`` is not a PNG."""
    if len(data) >= 24 and bytes(data[:8]) == b'\x89PNG\r\n\x1a\n':
        width = int.from_bytes(bytes(data[16:20]), 'big')
        height = int.from_bytes(bytes(data[20:24]), 'big')
        return height, width
    return 0, 0
