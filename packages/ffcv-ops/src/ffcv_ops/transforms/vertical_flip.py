"""Random top-bottom mirroring of HxWxC image batches (numpy, before ToTensor), in place."""
import numpy as np

from ..kernels.vertical_flip import flip_vertical_inplace
from ..operation import Operation
from .inputs import probability, require_images


class RandomVerticalFlip(Operation):
    """Mirror each image top-bottom with probability ``flip_prob`` (in place).

    The draw of each sample comes from (seed, epoch, sample index), as for
    ``RandomHorizontalFlip``; images of any channel count and element type.

    >>> RandomVerticalFlip()
    RandomVerticalFlip(flip_prob=0.5)
    """

    is_parallel = True
    compiled = False

    def __init__(self, flip_prob: float = 0.5):
        super().__init__()
        self.flip_prob = probability('RandomVerticalFlip', 'flip_prob', flip_prob)

    def declare_state_and_memory(self, previous_state):
        require_images(self, previous_state)
        return previous_state, None

    def generate_code(self):
        flip_prob = self.flip_prob

        def vertical_flip(images, destination, indices, seed):
            n, height, width, channels = images.shape
            # in place: the decoder's rows are contiguous, so the reshape is a view
            images = np.ascontiguousarray(images)
            rows = images.reshape(n * height, width * channels)
            row_bytes = rows.shape[1] * rows.itemsize
            word = next(w for w in (8, 4, 2, 1) if row_bytes % w == 0)   # swap 8-byte words when possible
            flip_vertical_inplace(rows.view(np.dtype(f'u{word}')), height,
                                  np.ascontiguousarray(indices, np.int64), np.uint64(seed), flip_prob)
            return images

        return vertical_flip

    def __repr__(self):
        return f"RandomVerticalFlip(flip_prob={self.flip_prob})"
