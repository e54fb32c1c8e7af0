"""CutMix (Yun et al., 2019): a random box of each image replaced by the same box of the
image before it in the batch (the first takes from the last), as torchvision's ``CutMix``."""
import math

import numpy as np
from numba import njit

from .random import beta_variate, sample_key, uniform


@njit(nogil=True, cache=True)
def cutmix_box(key, alpha, height, width, box):
    """One sample's box ``box[:] = (top, left, bottom, right)`` (rows ``top:bottom``,
    columns ``left:right``); returns the share of the image left as it was, ``1 - box area /
    image area`` (the weight of the sample's own label).

    ``lam`` ~ Beta(``alpha``, ``alpha``) from draws 0, 1, ... of ``key`` (``beta_variate``);
    the centre is a uniform pixel ``(floor(u * height), floor(u' * width))`` from the next
    two draws; the half sides are ``floor(r * height)`` and ``floor(r * width)`` with
    ``r = sqrt(1 - lam) / 2``, and the box is clipped to the image.
    """
    lam, k = beta_variate(key, 0, alpha, alpha)
    centre_y = min(int(uniform(key, k) * height), height - 1)
    centre_x = min(int(uniform(key, k + 1) * width), width - 1)
    r = 0.5 * math.sqrt(1.0 - lam)
    half_height = int(r * height)
    half_width = int(r * width)
    box[0] = max(centre_y - half_height, 0)
    box[1] = max(centre_x - half_width, 0)
    box[2] = min(centre_y + half_height, height)
    box[3] = min(centre_x + half_width, width)
    return 1.0 - (box[2] - box[0]) * (box[3] - box[1]) / (height * width)


@njit(nogil=True, cache=True)
def cutmix_inplace(images, indices, seed, alpha):
    """CutMix of ``images`` ``(n, height, width, channels)`` in place: image ``i`` takes its
    box (``cutmix_box``) from the original image ``i - 1`` (image 0 from image ``n - 1``).

    Images are processed from the last to the first, so each reads a partner not yet
    changed; the last image is kept aside for the first."""
    n, height, width, channels = images.shape
    if n == 0 or height == 0 or width == 0:
        return
    last = images[n - 1].copy()
    box = np.empty(4, np.int64)
    for i in range(n - 1, -1, -1):
        cutmix_box(sample_key(seed, indices[i]), alpha, height, width, box)
        partner = images[i - 1] if i > 0 else last
        image = images[i]
        for y in range(box[0], box[2]):
            for x in range(box[1], box[3]):
                for c in range(channels):
                    image[y, x, c] = partner[y, x, c]


@njit(nogil=True, cache=True)
def cutmix_label_rows(labels, indices, seed, alpha, height, width, out):
    """``out[i] = (labels[i, 0], labels[i - 1, 0], share kept)``: the labels ``cutmix_inplace``
    mixes for images of ``height`` x ``width``, with the weight of the first (the same draws)."""
    n = labels.shape[0]
    box = np.empty(4, np.int64)
    for i in range(n):
        kept = cutmix_box(sample_key(seed, indices[i]), alpha, height, width, box)
        j = i - 1 if i > 0 else n - 1
        out[i, 0] = labels[i, 0]
        out[i, 1] = labels[j, 0]
        out[i, 2] = kept
