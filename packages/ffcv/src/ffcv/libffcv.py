"""FFCV 1.0's ``ffcv.libffcv``: what FFCV 1.0 code calls of its C library.

``memcpy`` is compiled (callable from Python and from numba code, like FFCV 1.0's);
``read`` reads part of a file at an offset. FFCV 1.0's ``imdecode`` and ``resize_crop``
(libjpeg-turbo and OpenCV called from compiled code) are not provided: decoders here do
that work (``SimpleRGBImageDecoder``, ``RandomResizedCropRGBImageDecoder``,
``CenterCropRGBImageDecoder``), see docs/migrating-from-ffcv1.md.
"""
import os

import numpy as np
from ffcv_ops.kernels.copy import memcpy


def read(fileno: int, destination: np.ndarray, offset: int) -> int:
    """Read ``destination.nbytes`` bytes of open file ``fileno`` at ``offset`` into
    ``destination`` (a contiguous array); returns the bytes read (fewer at the end of the file)."""
    view = memoryview(destination).cast('B')
    done = 0
    while done < view.nbytes:
        n = os.preadv(fileno, [view[done:]], offset + done)
        if n <= 0:
            break
        done += n
    return done


__all__ = ['memcpy', 'read']
