"""Random Gaussian blur of uint8 image batches (numpy, before ToTensor), in place."""
import math
from typing import Sequence, Tuple, Union

import numpy as np

from ..kernels.blur import gaussian_blur_inplace
from ..operation import Operation
from .inputs import probability, require_images


def _kernel_size(value) -> Tuple[int, int]:
    """``(size_x, size_y)`` from an int or a pair (torchvision's order: x first)."""
    sizes = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if (len(sizes) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                   and s > 0 and s % 2 == 1 for s in sizes)):
        raise ValueError(f"GaussianBlur kernel_size must be a positive odd integer or a pair of them "
                         f"(x, y), got {value!r}")
    return int(sizes[0]), int(sizes[1])


def _sigma_range(value) -> Tuple[float, float]:
    try:
        low, high = ((float(value), float(value)) if not isinstance(value, (tuple, list))
                     else tuple(float(v) for v in value))
    except (TypeError, ValueError):
        raise ValueError(f"GaussianBlur sigma must be a number > 0 or a pair (min, max) with "
                         f"0 < min <= max, got {value!r}") from None
    if not (0 < low <= high and math.isfinite(high)):
        raise ValueError(f"GaussianBlur sigma must be a number > 0 or a pair (min, max) with "
                         f"0 < min <= max, got {value!r}")
    return low, high


class GaussianBlur(Operation):
    """Blur an image with a Gaussian kernel of random width, with probability ``p`` (in place).

    Per sample, from (seed, epoch, sample index): applied when draw 0 is below ``p``; the
    standard deviation is uniform in ``sigma = (min, max)`` (draw 1; a number: fixed) and
    used on both axes, as torchvision's ``GaussianBlur`` draws it. The kernel has
    ``kernel_size`` taps (an odd int, or ``(x, y)``) with weights
    ``exp(-t^2 / (2 sigma^2))`` at ``t = -(size - 1) / 2 .. (size - 1) / 2``, normalised; it
    is applied separably (along x then y) in float32, with borders reflected without
    repeating the edge pixel (torch's ``'reflect'`` padding, continued by mirroring when
    the kernel is wider than the image), and the result rounded half up to uint8.
    uint8 images of any channel count, before ``ToTensor``.

    >>> GaussianBlur(23)
    GaussianBlur(kernel_size=(23, 23), sigma=(0.1, 2.0), p=0.5)
    """

    is_parallel = True
    compiled = False

    def __init__(self, kernel_size: Union[int, Sequence[int]], sigma: Union[float, Sequence[float]] = (0.1, 2.0),
                 p: float = 0.5):
        super().__init__()
        self.kernel_size = _kernel_size(kernel_size)
        self.sigma = _sigma_range(sigma)
        self.p = probability('GaussianBlur', 'p', p)

    def declare_state_and_memory(self, previous_state):
        require_images(self, previous_state)
        if np.dtype(previous_state.dtype) != np.uint8:
            raise ValueError(f"GaussianBlur works on uint8 images, got {np.dtype(previous_state.dtype)}")
        return previous_state, None

    def generate_code(self):
        size_x, size_y = self.kernel_size
        sigma_lo, sigma_hi = self.sigma
        p = self.p

        def gaussian_blur(images, destination, indices, seed):
            n, height, width, channels = images.shape
            images = np.ascontiguousarray(images)
            gaussian_blur_inplace(images.reshape(n * height, width * channels), height, channels,
                                  np.ascontiguousarray(indices, np.int64), np.uint64(seed), p, size_y, size_x,
                                  sigma_lo, sigma_hi)
            return images

        return gaussian_blur

    def __repr__(self):
        return f"GaussianBlur(kernel_size={self.kernel_size}, sigma={self.sigma}, p={self.p})"
