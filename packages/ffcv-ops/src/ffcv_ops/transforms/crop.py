"""Random resized crops of decoded image batches: FFCV 1.0's ``RandomResizedCrop``."""
import math
from dataclasses import replace

import cv2
import numpy as np

from ..allocation_query import AllocationQuery
from ..kernels.crop import random_resized_crop_boxes
from ..operation import Operation
from .inputs import require_images

#: image types OpenCV's INTER_AREA resizing handles
_CV_RESIZE_TYPES = tuple(np.dtype(t) for t in ('u1', 'u2', 'i2', 'f4', 'f8'))


def _range(name, value):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"RandomResizedCrop {name} must be (min, max), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(f"RandomResizedCrop {name} must be (min, max) with 0 < min <= max, got {value!r}")
    return lo, hi


class RandomResizedCrop(Operation):
    """A random crop of each image resized to ``size`` x ``size`` (Inception-style).

    For decoded images (``SimpleRGBImageDecoder``'s ``(height, width, channels)`` batches);
    cropping at decode time with ``RandomResizedCropRGBImageDecoder`` is faster. The crop
    has an area of ``scale`` (fraction of the image's area) and an aspect ratio (width /
    height) log-uniform in ``ratio``, drawn per sample from (seed, epoch, sample index) by
    torchvision's rule (ten tries, then the central crop with the ratio clamped into
    range), the same rule as ``RandomResizedCropRGBImageDecoder``; it is resized with
    OpenCV's INTER_AREA.

    >>> RandomResizedCrop(scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), size=224)
    RandomResizedCrop(scale=(0.08, 1.0), ratio=(0.75, 1.3333333333333333), size=224)
    """

    is_parallel = True
    compiled = False

    def __init__(self, scale, ratio, size):
        super().__init__()
        self.scale = _range('scale', scale)
        self.ratio = _range('ratio', ratio)
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"RandomResizedCrop size must be a positive integer (the output's side), "
                             f"got {size!r}")
        self.size = int(size)

    def declare_state_and_memory(self, previous_state):
        require_images(self, previous_state)
        height, width, channels = previous_state.shape
        dtype = np.dtype(previous_state.dtype)
        if dtype not in _CV_RESIZE_TYPES:
            raise ValueError(f"RandomResizedCrop resizes images of type "
                             f"{', '.join(t.name for t in _CV_RESIZE_TYPES)}; got {dtype}")
        if height == 0 or width == 0:
            raise ValueError(f"RandomResizedCrop got empty images of shape {previous_state.shape}")
        shape = (self.size, self.size, channels)
        return replace(previous_state, shape=shape), AllocationQuery(shape, dtype)

    def generate_code(self):
        scale_lo, scale_hi = self.scale
        log_ratio_lo, log_ratio_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        size = self.size

        def random_resized_crop(images, destination, indices, seed):
            n, height, width, channels = images.shape
            out = destination[:n]
            boxes = np.empty((n, 4), np.int64)
            random_resized_crop_boxes(np.full(n, height, np.int64), np.full(n, width, np.int64),
                                      np.ascontiguousarray(indices, np.int64), np.uint64(seed), scale_lo,
                                      scale_hi, log_ratio_lo, log_ratio_hi, boxes)
            images = np.ascontiguousarray(images)
            # one OpenCV call per image (GIL released), straight into the batch buffer
            for i, (top, left, h, w) in enumerate(boxes.tolist()):
                if channels == 1:
                    source, target = images[i, top:top + h, left:left + w, 0], out[i, :, :, 0]
                else:
                    source, target = images[i, top:top + h, left:left + w], out[i]
                result = cv2.resize(source, (size, size), dst=target, interpolation=cv2.INTER_AREA)
                if result.ctypes.data != target.ctypes.data:   # OpenCV could not write into the row
                    target[...] = result.reshape(target.shape)
            return out

        return random_resized_crop

    def __repr__(self):
        return f"RandomResizedCrop(scale={self.scale}, ratio={self.ratio}, size={self.size})"
