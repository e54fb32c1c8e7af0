"""Erasing rectangles of uint8 image batches (numpy, before ToTensor), in place:
``RandomCutout`` (a square of fixed side, applied with a probability) and
``RandomErasing`` (Zhong et al., 2017: rectangles of random area and aspect, filled with
normally distributed values)."""
import math
from typing import Sequence

import numpy as np

from ..kernels.erasing import random_cutout_inplace, random_erasing_inplace
from ..operation import Operation
from .inputs import probability, require_images

#: ImageNet's per-channel mean and standard deviation, in 0..255 units
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def _numbers(op_name, argument, values):
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{op_name} {argument} must be a sequence of numbers (one per channel), "
                         f"got {values!r}") from None
    if not numbers or not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"{op_name} {argument} must be one or more finite numbers, got {values!r}")
    return numbers


def _per_channel(op, argument, values, channels):
    """``values`` as one number per channel: one value (or one value repeated) fits any
    channel count; otherwise there must be one per channel."""
    if len(values) != channels and len(set(values)) == 1:
        values = values[:1] * channels
    if len(values) != channels:
        raise ValueError(f"{type(op).__name__} {argument} has {len(values)} values, "
                         f"the images have {channels} channels")
    return np.array(values, dtype=np.float64)


def _require_uint8_images(op, state):
    require_images(op, state)
    if np.dtype(state.dtype) != np.uint8:
        raise ValueError(f"{type(op).__name__} works on uint8 images, got {np.dtype(state.dtype)}")


class RandomCutout(Operation):
    """With probability ``prob``, fill a ``crop_size`` x ``crop_size`` square of an image
    with ``fill`` (in place).

    Per sample, from (seed, epoch, sample index): applied when draw 0 is below ``prob``;
    the square's centre is the pixel ``(int(u1 * height), int(u2 * width))`` and it spans
    ``centre - crop_size // 2`` to ``centre - crop_size // 2 + crop_size - 1`` on each axis,
    clipped at the borders (``Cutout`` with a probability). ``fill``: a value per channel,
    or one value for every channel.

    >>> RandomCutout(0.5, 16)
    RandomCutout(prob=0.5, crop_size=16, fill=(0, 0, 0))
    """

    is_parallel = True
    compiled = False

    def __init__(self, prob: float, crop_size: int, fill: Sequence[int] = (0, 0, 0)):
        super().__init__()
        self.prob = probability('RandomCutout', 'prob', prob)
        if isinstance(crop_size, bool) or not isinstance(crop_size, (int, np.integer)) or crop_size <= 0:
            raise ValueError(f"RandomCutout crop_size must be a positive integer, got {crop_size!r}")
        self.crop_size = int(crop_size)
        fill = tuple(fill) if isinstance(fill, (tuple, list, np.ndarray)) else (fill,)
        if not fill or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255
                                for v in fill):
            raise ValueError(f"RandomCutout fill must be integers in 0..255 (one per channel, or one "
                             f"for all), got {fill!r}")
        self.fill = tuple(int(v) for v in fill)

    def declare_state_and_memory(self, previous_state):
        _require_uint8_images(self, previous_state)
        self._fill = _per_channel(self, 'fill', self.fill, previous_state.shape[2]).astype(np.uint8)
        return previous_state, None

    def generate_code(self):
        op = self

        def random_cutout(images, destination, indices, seed):
            random_cutout_inplace(images, np.ascontiguousarray(indices, np.int64), np.uint64(seed), op.prob,
                                  op.crop_size, op._fill)
            return images

        return random_cutout

    def __repr__(self):
        return f"RandomCutout(prob={self.prob}, crop_size={self.crop_size}, fill={self.fill})"


class RandomErasing(Operation):
    """With probability ``prob``, replace 1 to ``max_count`` random rectangles of an image
    with normally distributed values (in place; Zhong et al., 2017).

    Per sample, from (seed, epoch, sample index), in this order: whether to erase (draw
    below ``prob``); the number of rectangles ``count``, uniform in ``1..max_count``; then
    per rectangle: its area, a fraction of the image's uniform in
    [``min_area``, ``max_area``) divided by ``count``; its aspect (height / width),
    log-uniform in [``min_aspect``, ``1 / min_aspect``]; its sides
    ``round(sqrt(area * aspect))`` by ``round(sqrt(area / aspect))``, clipped to the
    image (at least one pixel); its position, uniform among those where it fits; and its
    values ``fill_mean[c] + fill_std[c] * z`` with ``z`` standard normal, clipped and
    rounded to uint8. ``fast_fill=True`` draws one ``z`` per channel of the rectangle (a
    flat random colour, cheap; Box-Muller); ``fast_fill=False`` one per pixel and channel
    (noise, as the paper and torchvision's ``value='random'`` do, in normalised units),
    each ``z`` a uniform pick among 4096 values: the normal's quantiles at ``(i + 0.5) /
    4096``, scaled to variance 1 (``kernels.erasing.NORMAL_QUANTILES``: mean 0, variance 1,
    ``|z| < 3.67``, normal quantiles within 0.01), 12 hashed bits per value.

    ``fill_mean``/``fill_std`` are in pixel units (0..255): the defaults are ImageNet's, so
    that after ``NormalizeImage`` with ImageNet's statistics the fill is standard normal.
    One value fits any channel count; otherwise one per channel.

    >>> RandomErasing(prob=1.0, max_count=3, fill_mean=(0,), fill_std=(0,))   # up to 3 black boxes
    RandomErasing(prob=1.0, min_area=0.02, max_area=0.3333333333333333, min_aspect=0.3, max_count=3, fill_mean=(0.0,), fill_std=(0.0,), fast_fill=True)
    """

    is_parallel = True
    compiled = False

    def __init__(self, prob: float = 0.5, min_area: float = 0.02, max_area: float = 1 / 3,
                 min_aspect: float = 0.3, max_count: int = 1, fill_mean: Sequence[float] = IMAGENET_MEAN,
                 fill_std: Sequence[float] = IMAGENET_STD, fast_fill: bool = True):
        super().__init__()
        self.prob = probability('RandomErasing', 'prob', prob)
        try:
            low, high, aspect = float(min_area), float(max_area), float(min_aspect)
        except (TypeError, ValueError):
            raise ValueError(f"RandomErasing min_area, max_area and min_aspect must be numbers, got "
                             f"{min_area!r}, {max_area!r}, {min_aspect!r}") from None
        if not 0 < low <= high <= 1:
            raise ValueError(f"RandomErasing needs 0 < min_area <= max_area <= 1 (fractions of the image), "
                             f"got min_area={min_area!r}, max_area={max_area!r}")
        if not 0 < aspect <= 1:
            raise ValueError(f"RandomErasing min_aspect must be in (0, 1] (aspects range from min_aspect "
                             f"to 1 / min_aspect), got {min_aspect!r}")
        if isinstance(max_count, bool) or not isinstance(max_count, (int, np.integer)) or max_count < 1:
            raise ValueError(f"RandomErasing max_count must be a positive integer, got {max_count!r}")
        self.min_area, self.max_area, self.min_aspect, self.max_count = low, high, aspect, int(max_count)
        self.fill_mean = _numbers('RandomErasing', 'fill_mean', fill_mean)
        self.fill_std = _numbers('RandomErasing', 'fill_std', fill_std)
        if any(s < 0 for s in self.fill_std):
            raise ValueError(f"RandomErasing fill_std must be >= 0, got {fill_std!r}")
        if not isinstance(fast_fill, (bool, np.bool_)):
            raise ValueError(f"RandomErasing fast_fill must be True or False, got {fast_fill!r}")
        self.fast_fill = bool(fast_fill)

    def declare_state_and_memory(self, previous_state):
        _require_uint8_images(self, previous_state)
        channels = previous_state.shape[2]
        self._mean = _per_channel(self, 'fill_mean', self.fill_mean, channels)
        self._std = _per_channel(self, 'fill_std', self.fill_std, channels)
        return previous_state, None

    def generate_code(self):
        op = self
        log_aspect = math.log(self.min_aspect)

        def random_erasing(images, destination, indices, seed):
            random_erasing_inplace(images, np.ascontiguousarray(indices, np.int64), np.uint64(seed), op.prob,
                                   op.min_area, op.max_area, log_aspect, -log_aspect, op.max_count,
                                   op._mean, op._std, op.fast_fill)
            return images

        return random_erasing

    def __repr__(self):
        return (f"RandomErasing(prob={self.prob}, min_area={self.min_area}, max_area={self.max_area}, "
                f"min_aspect={self.min_aspect}, max_count={self.max_count}, fill_mean={self.fill_mean}, "
                f"fill_std={self.fill_std}, fast_fill={self.fast_fill})")
