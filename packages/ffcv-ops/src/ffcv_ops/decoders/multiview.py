"""Several random resized crops ("views") of each image from one decode, for self-supervised
learning (SimCLR, BYOL, ...).

:class:`MultiViewRandomResizedCropRGBImageDecoder` decodes each image once (the same JPEG /
PNG / raw path as :class:`RandomResizedCropRGBImageDecoder`) and resizes ``views`` random
crops of it into the sample's slots: a sample is ``(views, height, width, channels)`` uint8,
a batch ``(batch, views, height, width, channels)``. Compare
:func:`ffcv_ops.transforms.multiview.multi_view_pipelines`, which decodes again per view but
lets every view have its own transforms.

View ``v`` of sample ``i`` draws its crop from the key of ``i * views + v`` (with the
operation's seed of the epoch): the views of a sample differ, the crops depend only on (seed,
epoch, sample index, view), not on the worker threads, and with ``views=1`` the output is
exactly :class:`RandomResizedCropRGBImageDecoder`'s.

Downstream: the numpy operations after the decoder that run on the worker threads (flips,
colour, blur, solarization, normalization...) run on each view on its own, drawing from
(seed, epoch, sample index, view) (``ffcv_ops.views``); ``ToTorchImage`` gives
``(batch, views, channels, height, width)``::

    pipelines = {'image': [MultiViewRandomResizedCropRGBImageDecoder((224, 224), views=2),
                           RandomHorizontalFlip(), ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8),
                           GaussianBlur(23, p=0.5), ToTensor(), ToTorchImage()],
                 'label': [IntDecoder(), ToTensor()]}
    for images, labels in Loader('train.beton', batch_size=256, pipelines=pipelines):
        view0, view1 = images[:, 0], images[:, 1]    # (batch, 3, 224, 224) each

Every view gets the same list of operations (with its own draws); views of different sizes
or augmentations need one pipeline per view (``multi_view_pipelines``).
"""
import threading
from dataclasses import replace

import cv2
import numpy as np
from ffcv_format import FormatError

from ..allocation_query import AllocationQuery
from ..kernels.image_chunks import BOXES_RANDOM_RESIZED, decode_views_chunk
from ..libjpeg import libjpeg
from .image import RandomResizedCropRGBImageDecoder, run_in_workspace

__all__ = ['MultiViewRandomResizedCropRGBImageDecoder']


class MultiViewRandomResizedCropRGBImageDecoder(RandomResizedCropRGBImageDecoder):
    """``views`` random resized crops of each image, decoded once, resized to ``output_size``:
    samples of shape ``(views, height, width, channels)`` uint8 (see the module's docstring).

    ``scale`` and ``ratio`` as for :class:`RandomResizedCropRGBImageDecoder`, the same for
    every view. ``output_size`` may change between epochs (nothing is recompiled).

    >>> MultiViewRandomResizedCropRGBImageDecoder((9, 9), views=4, scale=(0.2, 1.0), ratio=(0.5, 2))
    MultiViewRandomResizedCropRGBImageDecoder(output_size=(9, 9), views=4, scale=(0.2, 1.0), ratio=(0.5, 2.0))
    """

    def __init__(self, output_size, views=2, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        if isinstance(views, bool) or not isinstance(views, (int, np.integer)) or views < 1:
            raise ValueError(f"views must be a positive integer, got {views!r}")
        super().__init__(output_size, scale=scale, ratio=ratio)
        self.views = int(views)

    def declare_state_and_memory(self, previous_state):
        state, _ = super().declare_state_and_memory(previous_state)
        shape = (self.views, *state.shape)
        return replace(state, shape=shape), AllocationQuery(shape, np.dtype('u1'))

    def generate_code(self):
        if self.get_crop_generator is not None:
            raise TypeError(f"{type(self).__name__} draws its own crops; get_crop_generator is not supported")
        channels = self.channels
        decode_one = self._decode_one
        gather = self._gather
        boxes_of = self._boxes
        views = self.views
        interpolation = self.interpolation
        box_kind, box_parameters = self._box_rule()
        # the compiled path: libjpeg usable, OpenCV's INTER_AREA (kernels/resize.py), built-in boxes
        library = libjpeg() if interpolation == cv2.INTER_AREA and box_kind == BOXES_RANDOM_RESIZED else None
        columns = self._metadata_columns()
        workspaces = threading.local()    # one per worker thread: it holds a decompressor

        def decode_each(indices, rows, destination, data, modes, heights, widths, starts, sizes, boxes, scratch):
            """The per-image path: PNG, RGBA, what the compiled kernel leaves out, and every image
            when libjpeg is not usable. ``boxes``: ``(views, n, 4)``."""
            size = (destination.shape[3], destination.shape[2])
            for i in rows:
                try:
                    # one decode per image, into the chunk's scratch buffer: every view is
                    # resized from it before the next image overwrites it
                    image = decode_one(data, int(starts[i]), int(sizes[i]), int(modes[i]), int(heights[i]),
                                       int(widths[i]), channels, scratch)
                except ValueError as e:
                    raise FormatError(f"sample {int(indices[i])}: {e}") from e
                for v in range(views):
                    top, left, h, w = boxes[v, i].tolist()
                    if channels == 1:
                        cv2.resize(image[top:top + h, left:left + w, 0], size, dst=destination[i, v, :, :, 0],
                                   interpolation=interpolation)
                    else:
                        cv2.resize(image[top:top + h, left:left + w], size, dst=destination[i, v],
                                   interpolation=interpolation)

        def decode_in_one_call(indices, destination, storage_state, seed):
            """Metadata, every view's box, one decode per image and every view's resize, in one
            compiled call (``kernels.image_chunks.decode_views_chunk``)."""
            n = indices.shape[0]
            boxes = np.empty((views, n, 4), dtype=np.int64)
            status = np.empty(n, np.uint8)
            row, code, left_out = run_in_workspace(workspaces, library, decode_views_chunk, columns, indices,
                                                   storage_state, channels, box_parameters, np.uint64(seed), boxes,
                                                   destination, status)
            if code or left_out:   # a problem to name (raised by gather), or images for the Python path
                modes, heights, widths, starts, sizes, scratch = gather(indices, storage_state)
                decode_each(indices, np.flatnonzero(status).tolist(), destination, storage_state[0], modes,
                            heights, widths, starts, sizes, boxes, scratch)
            return destination

        def decode(indices, destination, metadata, storage_state, seed=0):
            n = indices.shape[0]
            if library is not None and n and destination.flags.c_contiguous:
                return decode_in_one_call(indices, destination, storage_state, seed)
            modes, heights, widths, starts, sizes, scratch = gather(indices, storage_state)
            keys = indices.astype(np.int64) * views
            boxes = np.empty((views, n, 4), dtype=np.int64)
            for v in range(views):
                boxes_of(heights, widths, keys + v, seed, boxes[v])
            decode_each(indices, range(n), destination, storage_state[0], modes, heights, widths, starts, sizes,
                        boxes, scratch)
            return destination

        return decode

    def __repr__(self):
        return (f"{type(self).__name__}(output_size={self.output_size}, views={self.views}, "
                f"scale={self.scale}, ratio={self.ratio})")
