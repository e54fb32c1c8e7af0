"""CutMix (Yun et al., 2019) on uint8 image batches and the matching label rows, as
torchvision's ``CutMix``, with ImageMixup's pairing (each sample with the one before it)."""
import math
from dataclasses import replace
from typing import Sequence, Union

import numpy as np

from ..allocation_query import AllocationQuery
from ..kernels.cutmix import cutmix_inplace, cutmix_label_rows
from ..operation import Operation
from ..state import State
from .inputs import require_images, require_labels

#: the random stream both halves of CutMix draw from (see ``Operation.random_stream``)
CUTMIX_STREAM = 'cutmix'


def _check_alpha(op_name, alpha):
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = float('nan')
    if isinstance(alpha, (bool, np.bool_)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{op_name} alpha must be a positive number (the Beta(alpha, alpha) parameter), "
                         f"got {alpha!r}")
    return value


class CutMix(Operation):
    """Paste into each image a random box of the image before it in the batch (the first
    takes from the last), in place: torchvision's ``CutMix`` on a batch.

    Per sample, from (seed, epoch, sample index) and the random stream ``'cutmix'``:
    ``lam ~ Beta(alpha, alpha)``, a uniform centre pixel, half sides ``floor(r * height)``
    and ``floor(r * width)`` with ``r = sqrt(1 - lam) / 2``, the box clipped to the image
    (``kernels.cutmix.cutmix_box``). The share of the image left as it was is the weight
    of its own label.

    Put ``LabelCutMix(alpha, image_size)`` with the same ``alpha`` in the label pipeline of
    the same loader: both draw from the stream ``'cutmix'``, so the pairs and the boxes
    agree. uint8 images ``(height, width, channels)`` before ``ToTensor``.

    >>> CutMix(alpha=1.0)
    CutMix(alpha=1.0)
    """

    is_parallel = False      # image i takes from image i - 1 of the batch
    compiled = False
    random_stream = CUTMIX_STREAM

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = _check_alpha('CutMix', alpha)

    def declare_state_and_memory(self, previous_state: State):
        require_images(self, previous_state)
        if np.dtype(previous_state.dtype) != np.uint8:
            raise ValueError(f"CutMix works on uint8 images, got {np.dtype(previous_state.dtype)}")
        return previous_state, None

    def generate_code(self):
        alpha = self.alpha

        def cutmix(images, destination, indices, seed):
            cutmix_inplace(images, np.ascontiguousarray(indices, np.int64), np.uint64(seed), alpha)
            return images

        return cutmix

    def __repr__(self):
        return f"CutMix(alpha={self.alpha})"


class LabelCutMix(Operation):
    """The labels of ``CutMix``'s images: ``(batch, 1)`` integer labels (``IntDecoder``'s
    output) become ``(batch, 3)`` float32 rows ``[label_i, label_{i-1}, lam_i]``, ``lam_i``
    the share of image ``i`` that CutMix left as it was (1 - the box's area over the
    image's), as ``LabelMixup`` gives (``MixupToOneHot`` turns them into soft targets).

    The box depends on the image size, which a label pipeline does not see: ``image_size``
    is the ``(height, width)`` (or one number for square images) of the images when they
    reach ``CutMix``. With the same ``alpha``, pairs and weights are exactly those of the
    images (both draw from the random stream ``'cutmix'``).

    >>> LabelCutMix(alpha=1.0, image_size=(32, 32))
    LabelCutMix(alpha=1.0, image_size=(32, 32))
    """

    is_parallel = False
    compiled = False
    random_stream = CUTMIX_STREAM

    def __init__(self, alpha: float = 1.0, image_size: Union[int, Sequence[int]] = None):
        super().__init__()
        self.alpha = _check_alpha('LabelCutMix', alpha)
        accepted = "the (height, width) of the images CutMix cuts, or one positive integer for square images"
        if image_size is None:
            raise ValueError(f"LabelCutMix image_size is required: {accepted}")
        size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
        try:
            height, width = size
        except (TypeError, ValueError):
            raise ValueError(f"LabelCutMix image_size must be {accepted}, got {image_size!r}") from None
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and s > 0
                   for s in (height, width)):
            raise ValueError(f"LabelCutMix image_size must be {accepted}, got {image_size!r}")
        self.image_size = (int(height), int(width))

    def declare_state_and_memory(self, previous_state: State):
        require_labels(self, previous_state)
        return (replace(previous_state, shape=(3,), dtype=np.dtype(np.float32)),
                AllocationQuery((3,), np.dtype(np.float32)))

    def generate_code(self):
        alpha = self.alpha
        height, width = self.image_size

        def label_cutmix(labels, destination, indices, seed):
            n = labels.shape[0]
            out = destination[:n]
            cutmix_label_rows(labels, np.ascontiguousarray(indices, np.int64), np.uint64(seed), alpha, height,
                              width, out)
            return out

        return label_cutmix

    def __repr__(self):
        return f"LabelCutMix(alpha={self.alpha}, image_size={self.image_size})"
