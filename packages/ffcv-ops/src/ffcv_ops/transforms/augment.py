"""Random augmentations of HxWxC uint8 image batches (numpy, before ToTensor)."""
import cv2
import numpy as np

from ..allocation_query import AllocationQuery
from ..kernels.augment import cutout_inplace, flip_draws, flip_horizontal_inplace, translate_rows
from ..kernels.mirror import mirror_drawn
from ..operation import Operation
from .inputs import require_images


#: images up to this many pixels are flipped by one compiled call per chunk rather than one
#: OpenCV call per image (whose Python overhead, under the GIL, dominates for 32x32 images)
_SMALL_IMAGE_PIXELS = 64 * 64
_CV_FLIP_TYPES = tuple(np.dtype(t) for t in ('u1', 'i1', 'u2', 'i2', 'i4', 'f4', 'f8'))


class RandomHorizontalFlip(Operation):
    """Mirror each image left-right with probability ``flip_prob`` (in place).

    The draw of each sample comes from (seed, epoch, sample index).
    """

    is_parallel = True
    compiled = False

    def __init__(self, flip_prob=0.5):
        super().__init__()
        if not 0 <= float(flip_prob) <= 1:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob!r}")
        self.flip_prob = float(flip_prob)

    def declare_state_and_memory(self, previous_state):
        require_images(self, previous_state)
        return previous_state, None

    def generate_code(self):
        flip_prob = self.flip_prob

        def flip(images, destination, indices, seed):
            if (images.dtype == np.uint8 and 1 <= images.shape[3] <= 4 and images.flags.c_contiguous):
                # the whole chunk in one compiled call: draws, then 16 pixels per vector shuffle
                draws = np.empty(indices.shape[0], dtype=np.bool_)
                mirror_drawn(images, indices, np.uint64(seed), flip_prob, draws,
                             np.empty(images.shape[2] * images.shape[3], np.uint8))
                return images
            if (images.dtype not in _CV_FLIP_TYPES or images.shape[3] > 4
                    or images.shape[1] * images.shape[2] <= _SMALL_IMAGE_PIXELS):
                flip_horizontal_inplace(images, indices, np.uint64(seed), flip_prob)
                return images
            # large images of other types: OpenCV's flip (GIL released, vectorised) is ~6x
            # faster than the compiled loop
            draws = np.empty(indices.shape[0], dtype=np.bool_)
            flip_draws(indices, np.uint64(seed), flip_prob, draws)
            single_channel = images.shape[3] == 1
            for i in np.flatnonzero(draws):
                image = images[i, :, :, 0] if single_channel else images[i]
                cv2.flip(image, 1, dst=image)
            return images

        return flip

    def __repr__(self):
        return f"RandomHorizontalFlip(flip_prob={self.flip_prob})"


def _fill_for(op, fill, state):
    """``fill`` as one value per channel of ``state``'s images (one repeated value fits any count)."""
    channels = state.shape[2]
    if len(fill) != channels and len(set(fill)) == 1:
        fill = fill[:1] * channels  # the default black works for any channel count
    if len(fill) != channels:
        raise ValueError(f"{type(op).__name__} fill has {len(op.fill)} values, "
                         f"the images have {channels} channels")
    return np.array(fill, dtype=state.dtype)


class Cutout(Operation):
    """Fill a random ``crop_size`` x ``crop_size`` square of each image with ``fill`` (in place).

    The square is centred at a uniformly drawn pixel and clipped at the borders (DeVries &
    Taylor, 2017). ``crop_size=None`` (the default) uses half the image's shorter side,
    the size that paper found best on CIFAR-10 (16 px of 32). ``fill`` has a value per
    channel; one value (or the same value repeated) fills every channel.
    """

    is_parallel = True
    compiled = False

    def __init__(self, crop_size=None, fill=(0, 0, 0)):
        super().__init__()
        if crop_size is not None and (not isinstance(crop_size, (int, np.integer)) or crop_size <= 0):
            raise ValueError(f"crop_size must be a positive integer or None, got {crop_size!r}")
        self.crop_size = crop_size
        self.fill = tuple(fill)

    def declare_state_and_memory(self, previous_state):
        require_images(self, previous_state)
        self._fill = _fill_for(self, self.fill, previous_state)
        self._size = (int(self.crop_size) if self.crop_size is not None
                      else max(1, min(previous_state.shape[:2]) // 2))
        return previous_state, None

    def generate_code(self):
        op = self

        def cutout(images, destination, indices, seed):
            cutout_inplace(images, indices, np.uint64(seed), op._size, op._fill)
            return images

        return cutout

    def __repr__(self):
        return f"Cutout(crop_size={self.crop_size}, fill={self.fill})"


class RandomTranslate(Operation):
    """Shift each image by up to ``padding`` pixels vertically and horizontally.

    The shifts (dy, dx) are drawn uniformly from ``-padding..padding`` per sample, from
    (seed, epoch, sample index); what comes in from outside the image is ``fill`` (a value
    per channel, or one value for all). The same as padding the image by ``padding`` on every
    side and taking a random crop of the original size (FFCV 1.0's ``RandomTranslate``; the
    usual CIFAR-10 augmentation with ``padding=2`` to ``4``).
    """

    is_parallel = True
    compiled = False

    def __init__(self, padding, fill=(0, 0, 0)):
        super().__init__()
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
        self.padding = int(padding)
        self.fill = tuple(fill)

    def declare_state_and_memory(self, previous_state):
        require_images(self, previous_state)
        self._fill = _fill_for(self, self.fill, previous_state)
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)

    def generate_code(self):
        op = self

        def random_translate(images, destination, indices, seed):
            n, height, width, channels = images.shape
            out = destination[:n]
            translate_rows(np.ascontiguousarray(images).reshape(n * height, width * channels),
                           out.reshape(n * height, width * channels), height, channels, indices,
                           np.uint64(seed), op.padding, np.tile(op._fill, width))
            return out

        return random_translate

    def __repr__(self):
        return f"RandomTranslate(padding={self.padding}, fill={self.fill})"
