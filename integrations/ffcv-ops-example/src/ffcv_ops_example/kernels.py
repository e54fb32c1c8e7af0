"""The compiled loop of ``ChannelShuffle``: draws from (seed, sample index) only.

``ffcv_ops.kernels.random`` gives every sample a key (``sample_key(seed, index)``) and
uniform numbers from it (``uniform(key, k)``); the loader's per-operation ``seed`` already
depends on its seed and the epoch. Draw 0 decides whether the sample is shuffled, draws
1.. are a Fisher-Yates shuffle of its channels.
"""
import numpy as np
from ffcv_ops.kernels.random import sample_key, uniform
from numba import njit


@njit(nogil=True, cache=True)
def draw_channel_order(key, p, order):
    """Fill ``order`` with the channel order of one sample; False if it is left as it is."""
    channels = order.shape[0]
    for j in range(channels):
        order[j] = j
    if uniform(key, 0) >= p:
        return False
    for j in range(channels - 1, 0, -1):
        k = int(uniform(key, j) * (j + 1))
        order[j], order[k] = order[k], order[j]
    return True


@njit(nogil=True, cache=True)
def shuffle_channels_inplace(images, indices, seed, p):
    """Permute the channels of ``images[i]`` (N x H x W x C) with probability ``p``, drawn
    from (``seed``, ``indices[i]``). Two small arrays per call, none per sample."""
    n, height, width, channels = images.shape
    order = np.empty(channels, np.int64)
    pixel = np.empty(channels, images.dtype)
    for i in range(n):
        if not draw_channel_order(sample_key(seed, indices[i]), p, order):
            continue
        for y in range(height):
            for x in range(width):
                for j in range(channels):
                    pixel[j] = images[i, y, x, order[j]]
                for j in range(channels):
                    images[i, y, x, j] = pixel[j]
