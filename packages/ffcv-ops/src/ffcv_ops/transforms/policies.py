"""torchvision's automatic augmentation policies ``RandAugment`` and ``TrivialAugmentWide``
on uint8 image batches (numpy, before ToTensor), in place: one compiled call per chunk
dispatching per image on an op code (``kernels/policy_ops.py``); no Python runs per image."""
from typing import Tuple

import numpy as np

from ..kernels.policy_ops import NUM_OPS, OP_NAMES, rand_augment_inplace, trivial_augment_inplace
from ..operation import Operation
from ..state import State
from .affine import Fill, check_fill, fill_values, require_uint8_images

__all__ = ['RandAugment', 'TrivialAugmentWide', 'rand_augment_space', 'trivial_augment_space']

_COLOR_OPS = ('Brightness', 'Color', 'Contrast', 'Sharpness')


def _posterize_bits(num_bins, steps):
    """``8 - round(arange(num_bins) / ((num_bins - 1) / steps))`` (rounded half to even)."""
    return 8 - np.round(np.arange(num_bins) / ((num_bins - 1) / steps))


def rand_augment_space(num_bins: int, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """RandAugment's magnitudes ``(14, num_bins)`` float64 and whether each op is signed,
    rows in ``OP_NAMES`` order (torchvision's ranges; ops without a magnitude: zeros)."""
    magnitudes = np.zeros((NUM_OPS, num_bins))
    rows = {'ShearX': np.linspace(0.0, 0.3, num_bins), 'ShearY': np.linspace(0.0, 0.3, num_bins),
            'TranslateX': np.linspace(0.0, 150.0 / 331.0 * width, num_bins),
            'TranslateY': np.linspace(0.0, 150.0 / 331.0 * height, num_bins),
            'Rotate': np.linspace(0.0, 30.0, num_bins),
            **{name: np.linspace(0.0, 0.9, num_bins) for name in _COLOR_OPS},
            'Posterize': _posterize_bits(num_bins, 4), 'Solarize': np.linspace(255.0, 0.0, num_bins)}
    for name, row in rows.items():
        magnitudes[OP_NAMES.index(name)] = row
    signed = np.array([name not in ('Identity', 'Posterize', 'Solarize', 'AutoContrast', 'Equalize')
                       for name in OP_NAMES])
    return magnitudes, signed


def trivial_augment_space(num_bins: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TrivialAugmentWide's magnitudes ``(14, num_bins)``, the number of magnitudes of each
    op (1 for Identity, AutoContrast and Equalize, whose magnitude is 0) and whether each is
    signed, rows in ``OP_NAMES`` order (torchvision's "wide" ranges)."""
    magnitudes = np.zeros((NUM_OPS, num_bins))
    rows = {'ShearX': np.linspace(0.0, 0.99, num_bins), 'ShearY': np.linspace(0.0, 0.99, num_bins),
            'TranslateX': np.linspace(0.0, 32.0, num_bins), 'TranslateY': np.linspace(0.0, 32.0, num_bins),
            'Rotate': np.linspace(0.0, 135.0, num_bins),
            **{name: np.linspace(0.0, 0.99, num_bins) for name in _COLOR_OPS},
            'Posterize': _posterize_bits(num_bins, 6), 'Solarize': np.linspace(255.0, 0.0, num_bins)}
    for name, row in rows.items():
        magnitudes[OP_NAMES.index(name)] = row
    counts = np.array([num_bins if name in rows else 1 for name in OP_NAMES], np.int64)
    signed = np.array([name not in ('Identity', 'Posterize', 'Solarize', 'AutoContrast', 'Equalize')
                       for name in OP_NAMES])
    return magnitudes, counts, signed


def _check_int(op_name, name, value, low, accepted):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{op_name} {name} must be {accepted}, got {value!r}")
    return int(value)


def _require_policy_images(op, state):
    require_uint8_images(op, state)
    if state.shape[2] not in (1, 3):
        raise ValueError(f"{type(op).__name__} works on images of 1 or 3 channels (its colour ops need RGB "
                         f"or grayscale), got images of shape {tuple(state.shape)}")


class RandAugment(Operation):
    """RandAugment (Cubuk et al., 2020) as torchvision's: ``num_ops`` ops per image, each
    drawn uniformly from Identity, ShearX, ShearY, TranslateX, TranslateY, Rotate,
    Brightness, Color, Contrast, Sharpness, Posterize, Solarize, AutoContrast, Equalize,
    at magnitude bin ``magnitude`` of ``num_magnitude_bins`` (torchvision's ranges:
    ``rand_augment_space``), the geometric and colour ones with a random sign.

    In place, compiled: one call per chunk, per image a dispatch on the op code
    (``kernels/policy_ops.py``); geometric ops sample the nearest pixel and read ``fill``
    outside the image. Draws per sample from (seed, epoch, sample index)
    (``kernels.policy_ops.rand_augment_draw``). uint8 images ``(height, width, channels)``
    of 1 or 3 channels (on 1 channel Color changes nothing, as in torchvision), before
    ``ToTensor``.

    >>> RandAugment(num_ops=2, magnitude=9)
    RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31, fill=0)
    """

    is_parallel = True
    compiled = False

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31, fill: Fill = 0):
        super().__init__()
        self.num_ops = _check_int('RandAugment', 'num_ops', num_ops, 0, "an integer >= 0")
        self.num_magnitude_bins = _check_int('RandAugment', 'num_magnitude_bins', num_magnitude_bins, 2,
                                             "an integer >= 2")
        highest = self.num_magnitude_bins - 1
        self.magnitude = _check_int('RandAugment', 'magnitude', magnitude, 0,
                                    f"an integer in [0, num_magnitude_bins - 1 = {highest}]")
        if self.magnitude >= self.num_magnitude_bins:
            raise ValueError(f"RandAugment magnitude must be an integer in [0, num_magnitude_bins - 1 = "
                             f"{self.num_magnitude_bins - 1}], got {magnitude!r}")
        self.fill = check_fill('RandAugment', fill)

    def declare_state_and_memory(self, previous_state: State):
        _require_policy_images(self, previous_state)
        height, width, channels = previous_state.shape
        self._fill = fill_values(self, self.fill, channels)
        table, self._signed = rand_augment_space(self.num_magnitude_bins, height, width)
        self._magnitudes = np.ascontiguousarray(table[:, self.magnitude])
        return previous_state, None

    def generate_code(self):
        num_ops, magnitudes, signed, fill = self.num_ops, self._magnitudes, self._signed, self._fill

        def rand_augment(images, destination, indices, seed):
            if num_ops:
                rand_augment_inplace(images, np.ascontiguousarray(indices, np.int64), np.uint64(seed),
                                     num_ops, magnitudes, signed, fill)
            return images

        return rand_augment

    def __repr__(self):
        return (f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude}, "
                f"num_magnitude_bins={self.num_magnitude_bins}, fill={self.fill})")


class TrivialAugmentWide(Operation):
    """TrivialAugment (Müller & Hutter, 2021) as torchvision's ``TrivialAugmentWide``: one op
    per image drawn uniformly from RandAugment's 14, at a magnitude drawn uniformly from its
    ``num_magnitude_bins`` (the "wide" ranges: ``trivial_augment_space``), with a random
    sign for the geometric and colour ones.

    In place, compiled, one call per chunk (see ``RandAugment``); draws per sample from
    (seed, epoch, sample index) (``kernels.policy_ops.trivial_augment_draw``). uint8 images
    ``(height, width, channels)`` of 1 or 3 channels, before ``ToTensor``.

    >>> TrivialAugmentWide()
    TrivialAugmentWide(num_magnitude_bins=31, fill=0)
    """

    is_parallel = True
    compiled = False

    def __init__(self, num_magnitude_bins: int = 31, fill: Fill = 0):
        super().__init__()
        self.num_magnitude_bins = _check_int('TrivialAugmentWide', 'num_magnitude_bins', num_magnitude_bins,
                                             2, "an integer >= 2")
        self.fill = check_fill('TrivialAugmentWide', fill)
        self._magnitudes, self._counts, self._signed = trivial_augment_space(self.num_magnitude_bins)

    def declare_state_and_memory(self, previous_state: State):
        _require_policy_images(self, previous_state)
        self._fill = fill_values(self, self.fill, previous_state.shape[2])
        return previous_state, None

    def generate_code(self):
        magnitudes, counts, signed, fill = self._magnitudes, self._counts, self._signed, self._fill

        def trivial_augment(images, destination, indices, seed):
            trivial_augment_inplace(images, np.ascontiguousarray(indices, np.int64), np.uint64(seed),
                                    magnitudes, counts, signed, fill)
            return images

        return trivial_augment

    def __repr__(self):
        return f"TrivialAugmentWide(num_magnitude_bins={self.num_magnitude_bins}, fill={self.fill})"
