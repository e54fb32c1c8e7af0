"""Edits of chosen samples, listed by index: FFCV 1.0's ``Poison`` (blend a pattern into
their images) and ``ReplaceLabel`` (give them another label), for data-poisoning and
label-noise experiments."""
import math

import numpy as np

from ..kernels.targeted import poison_inplace, replace_labels_inplace
from ..operation import Operation
from .inputs import require_images, require_labels


def _sorted_indices(op, indices):
    """``indices`` as a sorted int64 array, or ValueError naming ``op``."""
    name = type(op).__name__
    try:
        array = np.asarray(indices)
    except Exception:
        array = None
    if array is None or array.ndim != 1 or (array.size and array.dtype.kind not in 'iu'):
        raise ValueError(f"{name} indices must be a 1-D sequence of sample indices (integers), "
                         f"got {indices!r}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} indices must be sample indices (>= 0), got {int(array.min())}")
    return np.sort(array.astype(np.int64))


def _describe(array):
    return f"<{array.shape} {array.dtype}>"


class Poison(Operation):
    """Blend ``mask`` into the images of the samples listed in ``indices`` (in place).

    ``out = clip(float32(x) * float32(1 - alpha) + float32(mask * alpha), clamp[0], clamp[1])``,
    computed in float32 and stored in the images' type (integers truncated toward zero);
    the other samples are left as they are. ``mask``: ``(height, width, channels)``, the
    pattern (the images must have its shape); ``alpha``: ``(height, width)``, the pattern's
    opacity per pixel (0: invisible, 1: replaces the image), the same for every channel;
    ``indices``: the samples to poison (sample ids in the file, any order); ``clamp``: the
    range the result is clipped to, which must fit the images' type.

    >>> mask = np.zeros((32, 32, 3)); mask[-4:, -4:] = 255          # a white 4x4 corner
    >>> alpha = np.zeros((32, 32)); alpha[-4:, -4:] = 1.0
    >>> Poison(mask, alpha, indices=[3, 17, 256])
    Poison(mask=<(32, 32, 3) float64>, alpha=<(32, 32) float64>, indices=<3 samples>, clamp=(0.0, 255.0))
    """

    is_parallel = True
    compiled = False

    def __init__(self, mask, alpha, indices, clamp=(0, 255)):
        super().__init__()
        try:
            mask = np.array(mask, dtype=np.float64)
            alpha = np.array(alpha, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("Poison mask and alpha must be arrays of numbers (mask: height x width x "
                             f"channels, alpha: height x width), got {type(mask).__name__} and "
                             f"{type(alpha).__name__}") from None
        if mask.ndim != 3:
            raise ValueError(f"Poison mask must be (height, width, channels), got shape {mask.shape}")
        if alpha.shape != mask.shape[:2]:
            raise ValueError(f"Poison alpha must be (height, width) = {mask.shape[:2]} like the mask, "
                             f"got shape {alpha.shape}")
        if not (np.isfinite(mask).all() and np.isfinite(alpha).all()):
            raise ValueError("Poison mask and alpha must be finite")
        try:
            low, high = (float(c) for c in clamp)
        except (TypeError, ValueError):
            raise ValueError(f"Poison clamp must be (low, high), got {clamp!r}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"Poison clamp must be (low, high) with low <= high, got {clamp!r}")
        self.mask, self.alpha, self.clamp = mask, alpha, (low, high)
        self.indices = _sorted_indices(self, indices)

    def declare_state_and_memory(self, previous_state):
        require_images(self, previous_state)
        shape, dtype = tuple(previous_state.shape), np.dtype(previous_state.dtype)
        if shape != self.mask.shape:
            raise ValueError(f"Poison mask has shape {self.mask.shape}, the images {shape}")
        if dtype.kind not in 'iu' and dtype not in (np.float32, np.float64):
            raise ValueError(f"Poison works on integer, float32 or float64 images, got {dtype}")
        if dtype.kind in 'iu':
            info = np.iinfo(dtype)
            if self.clamp[0] < info.min or self.clamp[1] > info.max:
                raise ValueError(f"Poison clamp {self.clamp} does not fit the images' type {dtype} "
                                 f"({info.min}..{info.max})")
        return previous_state, None

    def generate_code(self):
        keep = (1.0 - self.alpha)[:, :, None].repeat(self.mask.shape[2], axis=2).astype(np.float32).ravel()
        overlay = (self.mask * self.alpha[:, :, None]).astype(np.float32).ravel()
        targets = self.indices
        low, high = np.float32(self.clamp[0]), np.float32(self.clamp[1])

        def poison(images, destination, indices, seed):
            n = images.shape[0]
            images = np.ascontiguousarray(images)
            poison_inplace(images.reshape(n, keep.shape[0]), np.ascontiguousarray(indices, np.int64),
                           targets, keep, overlay, low, high)
            return images

        return poison

    def __repr__(self):
        return (f"Poison(mask={_describe(self.mask)}, alpha={_describe(self.alpha)}, "
                f"indices=<{self.indices.size} samples>, clamp={self.clamp})")


class ReplaceLabel(Operation):
    """Set the label of the samples listed in ``indices`` to ``new_label`` (in place).

    Works on integer label batches ``(batch, 1)`` (``IntDecoder``'s output), before
    ``ToTensor``; the other samples keep their labels.

    >>> ReplaceLabel([3, 17, 256], new_label=0)
    ReplaceLabel(indices=<3 samples>, new_label=0)
    """

    is_parallel = True
    compiled = False

    def __init__(self, indices, new_label):
        super().__init__()
        if isinstance(new_label, (bool, np.bool_)) or not isinstance(new_label, (int, np.integer)):
            raise ValueError(f"ReplaceLabel new_label must be an integer, got {new_label!r}")
        self.new_label = int(new_label)
        self.indices = _sorted_indices(self, indices)

    def declare_state_and_memory(self, previous_state):
        require_labels(self, previous_state)
        dtype = np.dtype(previous_state.dtype)
        if not np.iinfo(dtype).min <= self.new_label <= np.iinfo(dtype).max:
            raise ValueError(f"ReplaceLabel new_label {self.new_label} does not fit the labels' type {dtype}")
        return previous_state, None

    def generate_code(self):
        targets = self.indices
        new_label = self.new_label

        def replace_label(labels, destination, indices, seed):
            replace_labels_inplace(labels, np.ascontiguousarray(indices, np.int64), targets,
                                   labels.dtype.type(new_label))
            return labels

        return replace_label

    def __repr__(self):
        return f"ReplaceLabel(indices=<{self.indices.size} samples>, new_label={self.new_label})"
