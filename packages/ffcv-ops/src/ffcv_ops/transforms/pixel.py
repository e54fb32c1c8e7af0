"""Per-pixel random transforms of uint8 image batches (numpy, before ToTensor), in place:
``Solarization`` and ``RandomGrayscale``."""
import numpy as np

from ..kernels.pixel import grayscale_inplace, solarize_inplace
from ..operation import Operation
from .inputs import probability, require_images


def _require_uint8_images(op, state, channels=None):
    require_images(op, state)
    name = type(op).__name__
    if np.dtype(state.dtype) != np.uint8:
        raise ValueError(f"{name} works on uint8 images, got {np.dtype(state.dtype)}")
    if channels is not None and state.shape[2] not in channels:
        raise ValueError(f"{name} works on images of {' or '.join(map(str, channels))} channels, "
                         f"got images of shape {state.shape}")


class Solarization(Operation):
    """Invert the bright pixels of an image with probability ``solarization_prob`` (in place).

    Per sample, from (seed, epoch, sample index): applied when a uniform draw is below
    ``solarization_prob``; then every value ``x >= threshold`` (every channel on its own)
    becomes ``255 - x``. uint8 images of any channel count, before ``ToTensor``.

    >>> Solarization(0.2)
    Solarization(solarization_prob=0.2, threshold=128)
    """

    is_parallel = True
    compiled = False

    def __init__(self, solarization_prob: float = 0.5, threshold: int = 128):
        super().__init__()
        self.solarization_prob = probability('Solarization', 'solarization_prob', solarization_prob)
        if (isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer))
                or not 0 <= threshold <= 256):
            raise ValueError(f"Solarization threshold must be an integer in 0..256 (256: nothing is "
                             f"inverted), got {threshold!r}")
        self.threshold = int(threshold)

    def declare_state_and_memory(self, previous_state):
        _require_uint8_images(self, previous_state)
        return previous_state, None

    def generate_code(self):
        prob, threshold = self.solarization_prob, self.threshold

        def solarize(images, destination, indices, seed):
            n = images.shape[0]
            images = np.ascontiguousarray(images)
            solarize_inplace(images.reshape(n, -1) if n else images.reshape(0, 0),
                             np.ascontiguousarray(indices, np.int64), np.uint64(seed), prob, threshold)
            return images

        return solarize

    def __repr__(self):
        return f"Solarization(solarization_prob={self.solarization_prob}, threshold={self.threshold})"


class RandomGrayscale(Operation):
    """Turn an image gray with probability ``p`` (in place), keeping its channel count.

    Per sample, from (seed, epoch, sample index): applied when a uniform draw is below
    ``p``; then each pixel's three channels all become the ITU-R 601-2 luma
    ``(299 r + 587 g + 114 b) / 1000`` rounded half up. uint8 RGB images; 1-channel images
    are already gray and pass unchanged.

    >>> RandomGrayscale()
    RandomGrayscale(p=0.1)
    """

    is_parallel = True
    compiled = False

    def __init__(self, p: float = 0.1):
        super().__init__()
        self.p = probability('RandomGrayscale', 'p', p)

    def declare_state_and_memory(self, previous_state):
        _require_uint8_images(self, previous_state, channels=(1, 3))
        return previous_state, None

    def generate_code(self):
        p = self.p

        def grayscale(images, destination, indices, seed):
            n, height, width, channels = images.shape
            if channels == 1:
                return images
            images = np.ascontiguousarray(images)
            grayscale_inplace(images.reshape(n, height * width, 3), np.ascontiguousarray(indices, np.int64),
                              np.uint64(seed), p)
            return images

        return grayscale

    def __repr__(self):
        return f"RandomGrayscale(p={self.p})"
