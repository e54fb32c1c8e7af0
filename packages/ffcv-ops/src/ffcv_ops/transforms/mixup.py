"""Mixup (Zhang et al., 2018): images blended with their neighbour in the batch, and the
matching soft labels. FFCV 1.0's ``ImageMixup``, ``LabelMixup`` and ``MixupToOneHot``."""
import math
from dataclasses import replace

import numpy as np

from ..allocation_query import AllocationQuery
from ..kernels.mixup import mixup_label_rows, mixup_rows
from ..operation import Operation
from .inputs import require_images, require_labels

#: the random stream both halves of mixup draw from (see ``Operation.random_stream``)
MIXUP_STREAM = 'mixup'


def _check_mixup_arguments(op, alpha, same_lambda):
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = float('nan')
    if isinstance(alpha, (bool, np.bool_)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{type(op).__name__} alpha must be a positive number (the Beta(alpha, alpha) "
                         f"parameter), got {alpha!r}")
    if not isinstance(same_lambda, (bool, np.bool_)):
        raise ValueError(f"{type(op).__name__} same_lambda must be True or False, got {same_lambda!r}")
    return value, bool(same_lambda)


class _Mixup(Operation):
    is_parallel = False      # image i is blended with image i - 1 of the batch
    compiled = False
    random_stream = MIXUP_STREAM

    def __init__(self, alpha, same_lambda):
        super().__init__()
        self.alpha, self.same_lambda = _check_mixup_arguments(self, alpha, same_lambda)

    def __repr__(self):
        return f"{type(self).__name__}(alpha={self.alpha}, same_lambda={self.same_lambda})"


class ImageMixup(_Mixup):
    """Blend each image of a batch with the image before it (the first with the last).

    ``dst[i] = lam_i * x[i] + (1 - lam_i) * x[i - 1]``, computed in float64 and stored in
    the images' type (integers truncated toward zero, as FFCV 1.0 stored them). ``lam_i``
    is drawn from Beta(``alpha``, ``alpha``) per sample, from (seed, epoch, sample index);
    with ``same_lambda=True`` one ``lam`` serves the whole batch (the draw of its last
    sample). Works on numpy image batches ``(height, width, channels)`` of an integer type,
    float32 or float64, before ``ToTensor``; writes into a new buffer.

    Put ``LabelMixup(alpha, same_lambda)`` with the same arguments in the label pipeline of
    the same loader: both draw from the random stream ``'mixup'``, so they pair the same
    samples with the same weights (turn its output into soft targets with
    ``MixupToOneHot``).

    >>> ImageMixup(alpha=0.2, same_lambda=True)
    ImageMixup(alpha=0.2, same_lambda=True)
    """

    def declare_state_and_memory(self, previous_state):
        require_images(self, previous_state)
        dtype = np.dtype(previous_state.dtype)
        if dtype.kind not in 'iu' and dtype not in (np.float32, np.float64):
            raise ValueError(f"ImageMixup blends integer, float32 or float64 images, got {dtype}")
        return previous_state, AllocationQuery(previous_state.shape, dtype)

    def generate_code(self):
        alpha, same_lambda = self.alpha, self.same_lambda

        def image_mixup(images, destination, indices, seed):
            n = images.shape[0]
            out = destination[:n]
            row = int(np.prod(images.shape[1:]))
            mixup_rows(np.ascontiguousarray(images).reshape(n, row), np.ascontiguousarray(indices, np.int64),
                       np.uint64(seed), alpha, same_lambda, out.reshape(n, row))
            return out

        return image_mixup


class LabelMixup(_Mixup):
    """The labels of ``ImageMixup``'s blends: ``(batch, 1)`` integer labels (``IntDecoder``'s
    output) become ``(batch, 3)`` float32 rows ``[label_i, label_{i-1}, lam_i]``.

    With the same ``alpha`` and ``same_lambda`` as the loader's ``ImageMixup``, the pairs and
    weights are exactly those of the images (both draw from the random stream ``'mixup'``).
    ``MixupToOneHot(num_classes)`` (after ``ToTensor``) turns the rows into soft targets;
    or use them directly: ``loss = lam * ce(out, y0) + (1 - lam) * ce(out, y1)``.

    >>> LabelMixup(alpha=0.2, same_lambda=True)
    LabelMixup(alpha=0.2, same_lambda=True)
    """

    def declare_state_and_memory(self, previous_state):
        require_labels(self, previous_state)
        return (replace(previous_state, shape=(3,), dtype=np.dtype(np.float32)),
                AllocationQuery((3,), np.dtype(np.float32)))

    def generate_code(self):
        alpha, same_lambda = self.alpha, self.same_lambda

        def label_mixup(labels, destination, indices, seed):
            n = labels.shape[0]
            out = destination[:n]
            mixup_label_rows(labels, np.ascontiguousarray(indices, np.int64), np.uint64(seed), alpha,
                             same_lambda, out)
            return out

        return label_mixup


class MixupToOneHot(Operation):
    """``LabelMixup``'s rows as soft targets: a ``(batch, num_classes)`` tensor with ``lam``
    at ``label_i`` and ``1 - lam`` at ``label_{i-1}``.

    A torch operation: put it after ``ToTensor()`` (and ``ToDevice`` if wanted). The output
    has the input's dtype and device; the input is left unchanged. Labels must lie in
    ``0 .. num_classes - 1`` (checked on the CPU; on a GPU torch reports an index error).

    Deliberate difference from FFCV 1.0: when a sample is blended with one of its own class
    (``label_i == label_{i-1}``) the two weights are added (that class gets 1); FFCV 1.0
    wrote the second over the first and gave ``1 - lam``, so such rows did not sum to 1.

    >>> MixupToOneHot(10)
    MixupToOneHot(num_classes=10)
    """

    is_parallel = False
    compiled = False

    def __init__(self, num_classes):
        super().__init__()
        if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, (int, np.integer)) \
                or num_classes <= 0:
            raise ValueError(f"MixupToOneHot num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = int(num_classes)

    def declare_state_and_memory(self, previous_state):
        shape, dtype = previous_state.shape, previous_state.dtype
        if (previous_state.jit_mode or shape is None or tuple(shape) != (3,)
                or not getattr(dtype, 'is_floating_point', False)):
            raise ValueError(f"MixupToOneHot works on LabelMixup's (batch, 3) rows as a floating point "
                             f"torch tensor (put ToTensor() before it); it got data of shape {shape} and "
                             f"type {dtype} ({'numpy' if previous_state.jit_mode else 'torch'})")
        return (replace(previous_state, shape=(self.num_classes,)),
                AllocationQuery((self.num_classes,), dtype, previous_state.device))

    def generate_code(self):
        import torch
        num_classes = self.num_classes
        rows_cache = {}

        def mixup_to_one_hot(mixed, destination, indices=None, seed=0):
            n = mixed.shape[0]
            out = destination[:n]
            key = (n, mixed.device)
            if key not in rows_cache:
                rows_cache[key] = torch.arange(n, device=mixed.device)
            rows = rows_cache[key]
            first, second = mixed[:, 0].long(), mixed[:, 1].long()
            if mixed.device.type == 'cpu' and n:
                low = min(int(first.min()), int(second.min()))
                high = max(int(first.max()), int(second.max()))
                if low < 0 or high >= num_classes:
                    raise ValueError(f"MixupToOneHot(num_classes={num_classes}) got labels from {low} to "
                                     f"{high}: they must lie in 0..{num_classes - 1}")
            lam = mixed[:, 2].to(out.dtype)
            out.zero_()
            out.index_put_((rows, first), lam, accumulate=True)
            out.index_put_((rows, second), 1 - lam, accumulate=True)
            return out

        return mixup_to_one_hot

    def __repr__(self):
        return f"MixupToOneHot(num_classes={self.num_classes})"
