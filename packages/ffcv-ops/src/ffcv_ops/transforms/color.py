"""Random brightness, contrast and saturation of uint8 image batches (numpy, before
ToTensor), in place: FFCV 1.0's ``RandomBrightness``, ``RandomContrast``,
``RandomSaturation``."""
import math

import numpy as np

from ..kernels.color import brightness_inplace, contrast_inplace, saturation_inplace
from ..operation import Operation
from .inputs import require_images


class _ColorJitter(Operation):
    is_parallel = True
    compiled = False
    #: whether the operation needs RGB images (3 channels)
    needs_rgb = True
    kernel = None

    def __init__(self, magnitude, p=0.5):
        super().__init__()
        name = type(self).__name__
        try:
            magnitude_value, p_value = float(magnitude), float(p)
        except (TypeError, ValueError):
            raise ValueError(f"{name} takes numbers: magnitude >= 0 and p in [0, 1], "
                             f"got magnitude={magnitude!r}, p={p!r}") from None
        if not (math.isfinite(magnitude_value) and magnitude_value >= 0):
            raise ValueError(f"{name} magnitude must be a number >= 0, got {magnitude!r}")
        if not 0 <= p_value <= 1:
            raise ValueError(f"{name} p must be a probability in [0, 1], got {p!r}")
        self.magnitude, self.p = magnitude_value, p_value

    @property
    def factor_range(self):
        """(lowest, highest) factor: ``(max(0, 1 - magnitude), 1 + magnitude)``."""
        return max(0.0, 1.0 - self.magnitude), 1.0 + self.magnitude

    def declare_state_and_memory(self, previous_state):
        require_images(self, previous_state)
        name = type(self).__name__
        if np.dtype(previous_state.dtype) != np.uint8:
            raise ValueError(f"{name} works on uint8 images, got {np.dtype(previous_state.dtype)}")
        if self.needs_rgb and previous_state.shape[2] != 3:
            raise ValueError(f"{name} needs RGB images (3 channels), "
                             f"got images of shape {previous_state.shape}")
        return previous_state, None

    def generate_code(self):
        p = self.p
        lo, hi = self.factor_range
        kernel = type(self).kernel
        rgb = self.needs_rgb

        def color_jitter(images, destination, indices, seed):
            n, height, width, channels = images.shape
            # in place (the decoder's rows are contiguous, so the reshapes are views)
            images = np.ascontiguousarray(images)
            pixels = (images.reshape(n, height * width, 3) if rgb
                      else images.reshape(n, height * width * channels))
            kernel(pixels, np.ascontiguousarray(indices, np.int64), np.uint64(seed), p, lo, hi)
            return images

        return color_jitter

    def __repr__(self):
        return f"{type(self).__name__}(magnitude={self.magnitude}, p={self.p})"


class RandomBrightness(_ColorJitter):
    """Scale each image's values by a random factor, with probability ``p`` (in place).

    Per sample, from (seed, epoch, sample index): applied when a uniform draw is below
    ``p``; the factor ``f`` is uniform in ``[max(0, 1 - magnitude), 1 + magnitude]``, and
    ``x -> f * x``, clipped to [0, 255] and truncated to uint8. uint8 images
    ``(height, width, channels)`` of any channel count, before ``ToTensor``.

    >>> RandomBrightness(0.2)
    RandomBrightness(magnitude=0.2, p=0.5)
    """

    needs_rgb = False
    kernel = staticmethod(brightness_inplace)


class RandomContrast(_ColorJitter):
    """Move each image towards or away from its mean gray level, with probability ``p``
    (in place).

    Per sample (draws as ``RandomBrightness``): ``gray = trunc(0.2989 r + 0.587 g + 0.114 b)``
    per pixel (exactly), ``m`` its mean over the image, and ``x -> f * x + (1 - f) * m`` for every
    channel, clipped to [0, 255] and truncated to uint8. ``f < 1`` lowers the contrast,
    ``f > 1`` raises it. uint8 RGB images ``(height, width, 3)``, before ``ToTensor``.

    >>> RandomContrast(0.2, p=0.8)
    RandomContrast(magnitude=0.2, p=0.8)
    """

    kernel = staticmethod(contrast_inplace)


class RandomSaturation(_ColorJitter):
    """Move each pixel towards or away from its own gray level, with probability ``p``
    (in place).

    Per sample (draws as ``RandomBrightness``): ``gray = trunc(0.2989 r + 0.587 g + 0.114 b)``
    per pixel (exactly) and ``x -> f * x + (1 - f) * gray`` per channel, clipped to [0, 255]
    and truncated to uint8: ``f = 0`` gives a grayscale image, ``f > 1`` stronger colours.
    Computed as ``gray + floor(f * (x - gray))`` with ``f`` rounded to float32 and the
    product in float32 (one level off the exact value where ``f * (x - gray)`` lies within
    float32's rounding of an integer: about one pair in a million). uint8 RGB images
    ``(height, width, 3)``, before ``ToTensor``.

    >>> RandomSaturation(0.2)
    RandomSaturation(magnitude=0.2, p=0.5)
    """

    kernel = staticmethod(saturation_inplace)
