"""``ChannelShuffle``: swap the color channels of images at random (an ffcv operation)."""
import numpy as np
from ffcv_ops import Operation

from .kernels import shuffle_channels_inplace


class ChannelShuffle(Operation):
    """Put each image's channels in a random order with probability ``p`` (in place).

    Works on numpy image batches (height, width, channels) before ``ToTensor``. The draw of
    each sample comes from (seed, epoch, sample index): the same whatever the number of
    worker threads, and repeated when an epoch is resumed.

    >>> ChannelShuffle(p=0.3)
    ChannelShuffle(p=0.3)
    """

    #: samples are processed independently: worker threads each run a chunk
    is_parallel = True
    #: the code is a Python function calling a compiled kernel (compiled on its own)
    compiled = False

    def __init__(self, p: float = 0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def declare_state_and_memory(self, previous_state):
        shape = previous_state.shape
        if not previous_state.jit_mode or shape is None or len(shape) != 3:
            raise ValueError(f"ChannelShuffle works on numpy image batches (height, width, channels) "
                             f"before ToTensor; it got data of shape {shape}")
        # in place: the output is the input, no memory asked for
        return previous_state, None

    def generate_code(self):
        p = self.p

        def channel_shuffle(images, destination, indices, seed):
            shuffle_channels_inplace(images, indices, np.uint64(seed), p)
            return images

        return channel_shuffle

    def __repr__(self):
        return f"ChannelShuffle(p={self.p})"
