"""torchvision's ``RandomAffine`` and ``RandomRotation`` on uint8 image batches (numpy,
before ToTensor), in place, compiled (``kernels/affine.py``), nearest-neighbour sampling."""
import math
import numbers
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ..kernels.affine import random_affine_inplace, random_rotation_inplace
from ..operation import Operation
from ..state import State
from .inputs import require_images

Fill = Union[int, float, Sequence[Union[int, float]]]


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _numbers(op_name, name, value, count, accepted):
    """``value`` as a tuple of ``count`` finite floats, or a ValueError naming the argument."""
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{op_name} {name} must be {accepted}, got {value!r}") from None
    if len(values) not in ((count,) if isinstance(count, int) else count) \
            or not all(math.isfinite(v) for v in values) or any(isinstance(v, bool) for v in value):
        raise ValueError(f"{op_name} {name} must be {accepted}, got {value!r}")
    return values


def degree_range(op_name: str, name: str, value) -> Tuple[float, float]:
    """A number ``d >= 0`` is ``(-d, d)``; a pair ``(low, high)`` with ``low <= high`` is itself."""
    accepted = "a number >= 0 or a pair (low, high) of degrees with low <= high"
    if _is_number(value):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{op_name} {name} must be {accepted}, got {value!r}")
        return -float(value), float(value)
    low, high = _numbers(op_name, name, value, 2, accepted)
    if low > high:
        raise ValueError(f"{op_name} {name} must be {accepted}, got {value!r}")
    return low, high


def fill_values(op, fill: Fill, channels: int) -> np.ndarray:
    """``fill`` as one uint8 value per channel: a number fills every channel, a sequence
    gives one value per channel (one value repeated fits any count)."""
    name = type(op).__name__
    values = (fill,) if _is_number(fill) else tuple(fill)
    if not values or not all(_is_number(v) and 0 <= v <= 255 for v in values):
        raise ValueError(f"{name} fill must be a number in [0, 255] or one such number per channel, "
                         f"got {fill!r}")
    if len(values) != channels and len(set(values)) == 1:
        values = values[:1] * channels
    if len(values) != channels:
        raise ValueError(f"{name} fill has {len(values)} values, the images have {channels} channels")
    return np.array([int(v) for v in values], np.uint8)


def check_fill(op_name: str, fill: Fill) -> Fill:
    """``fill`` checked at construction: a number in [0, 255] or a sequence of them."""
    values = (fill,) if _is_number(fill) else fill
    try:
        ok = len(values) > 0 and all(_is_number(v) and 0 <= v <= 255 for v in values)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{op_name} fill must be a number in [0, 255] or one such number per channel, "
                         f"got {fill!r}")
    return fill if _is_number(fill) else tuple(fill)


def require_uint8_images(op, state: State):
    """``state`` must be uint8 numpy image batches."""
    require_images(op, state)
    if np.dtype(state.dtype) != np.uint8:
        raise ValueError(f"{type(op).__name__} works on uint8 images, got {np.dtype(state.dtype)}")


class RandomAffine(Operation):
    """A random affine map of each image about its centre, as torchvision's ``RandomAffine``
    (in place, compiled, nearest neighbour: torchvision's default for tensors).

    ``degrees``: rotation range (a number ``d`` is ``(-d, d)``), clockwise on screen for
    positive angles as torchvision's ``affine``. ``translate=(a, b)``: fractions of the
    width and height; the shifts are ``round(uniform(-a * width, a * width))`` and likewise
    in y (whole pixels). ``scale=(low, high)``: the zoom factor. ``shear``: degrees along
    x: a number ``s`` is ``(-s, s)``, a pair a range for x, four numbers ranges for x then
    y. ``fill``: the value of pixels read from outside the image (one number, or one per
    channel). Draws per sample from (seed, epoch, sample index) (``kernels.affine.affine_draws``).
    uint8 images ``(height, width, channels)``, any channel count, before ``ToTensor``.

    >>> RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10)  # doctest: +NORMALIZE_WHITESPACE
    RandomAffine(degrees=(-15.0, 15.0), translate=(0.1, 0.1), scale=(0.9, 1.1),
                 shear=(-10.0, 10.0, 0.0, 0.0), fill=0)
    """

    is_parallel = True
    compiled = False

    def __init__(self, degrees, translate: Optional[Sequence[float]] = None,
                 scale: Optional[Sequence[float]] = None, shear=None, fill: Fill = 0):
        super().__init__()
        self.degrees = degree_range('RandomAffine', 'degrees', degrees)
        if translate is not None:
            translate = _numbers('RandomAffine', 'translate', translate, 2,
                                 "a pair (a, b) of fractions in [0, 1] or None")
            if not all(0 <= t <= 1 for t in translate):
                raise ValueError(f"RandomAffine translate must be a pair (a, b) of fractions in [0, 1] or "
                                 f"None, got {translate!r}")
        self.translate = translate
        if scale is not None:
            scale = _numbers('RandomAffine', 'scale', scale, 2,
                             "a pair (low, high) with 0 < low <= high, or None")
            if not 0 < scale[0] <= scale[1]:
                raise ValueError(f"RandomAffine scale must be a pair (low, high) with 0 < low <= high, or "
                                 f"None, got {scale!r}")
        self.scale = scale
        self.shear = self._shear_ranges(shear)
        self.fill = check_fill('RandomAffine', fill)

    @staticmethod
    def _shear_ranges(shear):
        accepted = ("None, a number >= 0, a pair (low, high) of x-shear degrees, or four numbers "
                    "(x low, x high, y low, y high), each low <= high and within (-90, 90)")
        if shear is None:
            return 0.0, 0.0, 0.0, 0.0
        if _is_number(shear):
            if not (math.isfinite(shear) and 0 <= shear < 90):
                raise ValueError(f"RandomAffine shear must be {accepted}, got {shear!r}")
            return -float(shear), float(shear), 0.0, 0.0
        values = _numbers('RandomAffine', 'shear', shear, (2, 4), accepted)
        values = values + (0.0, 0.0) if len(values) == 2 else values
        if values[0] > values[1] or values[2] > values[3] or not all(-90 < v < 90 for v in values):
            raise ValueError(f"RandomAffine shear must be {accepted}, got {shear!r}")
        return values

    def declare_state_and_memory(self, previous_state: State):
        require_uint8_images(self, previous_state)
        self._fill = fill_values(self, self.fill, previous_state.shape[2])
        return previous_state, None

    def generate_code(self):
        degrees = np.array(self.degrees, np.float64)
        translate = np.array(self.translate if self.translate is not None else (-1.0, -1.0), np.float64)
        scales = np.array(self.scale if self.scale is not None else (1.0, 1.0), np.float64)
        shears = np.array(self.shear, np.float64)
        fill = self._fill

        def random_affine(images, destination, indices, seed):
            random_affine_inplace(images, np.ascontiguousarray(indices, np.int64), np.uint64(seed), degrees,
                                  translate, scales, shears, fill)
            return images

        return random_affine

    def __repr__(self):
        return (f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale}, "
                f"shear={self.shear}, fill={self.fill})")


class RandomRotation(Operation):
    """Rotate each image by a random angle about its centre, as torchvision's
    ``RandomRotation`` (in place, compiled, nearest neighbour, same size: ``expand=False``).

    ``degrees``: a number ``d`` (angle uniform in ``[-d, d]``) or ``(low, high)``; positive
    angles turn counter-clockwise on screen, as torchvision's ``rotate``. ``fill``: the value
    of the corners read from outside the image (one number, or one per channel). The angle
    of each sample comes from (seed, epoch, sample index). uint8 images
    ``(height, width, channels)``, any channel count, before ``ToTensor``.

    >>> RandomRotation(30)
    RandomRotation(degrees=(-30.0, 30.0), fill=0)
    """

    is_parallel = True
    compiled = False

    def __init__(self, degrees, fill: Fill = 0):
        super().__init__()
        self.degrees = degree_range('RandomRotation', 'degrees', degrees)
        self.fill = check_fill('RandomRotation', fill)

    def declare_state_and_memory(self, previous_state: State):
        require_uint8_images(self, previous_state)
        self._fill = fill_values(self, self.fill, previous_state.shape[2])
        return previous_state, None

    def generate_code(self):
        degrees = np.array(self.degrees, np.float64)
        fill = self._fill

        def random_rotation(images, destination, indices, seed):
            random_rotation_inplace(images, np.ascontiguousarray(indices, np.int64), np.uint64(seed), degrees,
                                    fill)
            return images

        return random_rotation

    def __repr__(self):
        return f"RandomRotation(degrees={self.degrees}, fill={self.fill})"
