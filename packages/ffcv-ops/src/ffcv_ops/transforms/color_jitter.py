"""torchvision's ``ColorJitter`` on uint8 image batches (numpy, before ToTensor), in place,
compiled (``kernels/color_jitter.py``)."""
import math
import numbers
from typing import Sequence, Tuple, Union

import numpy as np

from ..kernels.color_jitter import color_jitter_inplace
from ..operation import Operation
from ..state import State
from .inputs import require_images

Range = Union[float, Sequence[float]]


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def factor_range(name: str, value: Range) -> Tuple[float, float]:
    """torchvision's reading of a brightness/contrast/saturation argument: a number ``x >= 0``
    is ``[max(0, 1 - x), 1 + x]``, a pair ``(low, high)`` with ``0 <= low <= high`` is itself."""
    if _is_number(value):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"ColorJitter {name} must be a number >= 0 or a pair (low, high) with "
                             f"0 <= low <= high, got {value!r}")
        return max(0.0, 1.0 - float(value)), 1.0 + float(value)
    pair = _pair(name, value, "a number >= 0 or a pair (low, high) with 0 <= low <= high")
    if not 0 <= pair[0] <= pair[1]:
        raise ValueError(f"ColorJitter {name} must be a number >= 0 or a pair (low, high) with "
                         f"0 <= low <= high, got {value!r}")
    return pair


def hue_range(value: Range) -> Tuple[float, float]:
    """torchvision's reading of ``hue``: a number ``0 <= h <= 0.5`` is ``[-h, h]``, a pair
    ``(low, high)`` with ``-0.5 <= low <= high <= 0.5`` is itself (in turns of the colour wheel)."""
    accepted = "a number in [0, 0.5] or a pair (low, high) with -0.5 <= low <= high <= 0.5"
    if _is_number(value):
        if not 0 <= value <= 0.5:
            raise ValueError(f"ColorJitter hue must be {accepted}, got {value!r}")
        return -float(value), float(value)
    pair = _pair('hue', value, accepted)
    if not -0.5 <= pair[0] <= pair[1] <= 0.5:
        raise ValueError(f"ColorJitter hue must be {accepted}, got {value!r}")
    return pair


def _pair(name, value, accepted):
    try:
        low, high = value
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise ValueError(f"ColorJitter {name} must be {accepted}, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"ColorJitter {name} must be {accepted}, got {value!r}")
    return low, high


class ColorJitter(Operation):
    """Random brightness, contrast, saturation and hue, applied in a random order per image,
    as torchvision's ``ColorJitter`` (in place, compiled).

    Arguments as torchvision's: ``brightness``, ``contrast``, ``saturation``: a number ``x``
    (factor uniform in ``[max(0, 1 - x), 1 + x]``) or ``(low, high)``; ``hue``: a number
    ``h <= 0.5`` (shift uniform in ``[-h, h]``) or ``(low, high)`` within ``[-0.5, 0.5]``.
    An adjustment whose range is the identity (factor 1, shift 0) is left out. ``p``: the
    probability that an image is jittered at all (torchvision always jitters: ``p=1``).

    Per image, from (seed, epoch, sample index) (``kernels.color_jitter.color_jitter_draws``):
    whether it is jittered, a random order of the four, and the factors. The formulas are
    torchvision's on uint8 (see ``kernels/color_jitter.py``): blends with black, with the
    mean grey level, with each pixel's grey level (float64, as torchvision), and a hue
    rotation through HSV, computed exactly in integers with the hue shift rounded down to a
    step of 1/49152 turn (at most one level off torchvision's float result, on under 0.5% of
    values); results clamped to [0, 255] and truncated.

    uint8 images ``(height, width, channels)`` before ``ToTensor``. With only brightness,
    any number of channels; otherwise 1 or 3 channels: on 1-channel images saturation and
    hue change nothing and contrast blends with the image's mean, as in torchvision.

    >>> ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    ColorJitter(brightness=(0.6, 1.4), contrast=(0.6, 1.4), saturation=(0.6, 1.4), hue=(-0.1, 0.1), p=1.0)
    """

    is_parallel = True
    compiled = False

    def __init__(self, brightness: Range = 0, contrast: Range = 0, saturation: Range = 0, hue: Range = 0,
                 p: float = 1.0):
        super().__init__()
        self.brightness = factor_range('brightness', brightness)
        self.contrast = factor_range('contrast', contrast)
        self.saturation = factor_range('saturation', saturation)
        self.hue = hue_range(hue)
        if not _is_number(p) or not 0 <= p <= 1:
            raise ValueError(f"ColorJitter p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self._ranges = np.array([self.brightness, self.contrast, self.saturation, self.hue], np.float64)
        identity = np.array([[1.0, 1.0]] * 3 + [[0.0, 0.0]])
        self._enabled = ~(self._ranges == identity).all(axis=1)

    def declare_state_and_memory(self, previous_state: State):
        require_images(self, previous_state)
        dtype, shape = np.dtype(previous_state.dtype), previous_state.shape
        if dtype != np.uint8:
            raise ValueError(f"ColorJitter works on uint8 images, got {dtype}")
        if self._enabled[1:].any() and shape[2] not in (1, 3):
            raise ValueError(f"ColorJitter contrast, saturation and hue work on images of 1 or 3 channels; "
                             f"got images of shape {tuple(shape)} (brightness alone takes any channel count)")
        return previous_state, None

    def generate_code(self):
        p, ranges, enabled = self.p, self._ranges, self._enabled

        def color_jitter(images, destination, indices, seed):
            if p > 0 and enabled.any():
                color_jitter_inplace(images, np.ascontiguousarray(indices, np.int64), np.uint64(seed), p,
                                     ranges, enabled)
            return images

        return color_jitter

    def __repr__(self):
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue}, p={self.p})")
