"""The compiled INTER_AREA resize (``ffcv_ops.kernels.resize.resize_area``) against
``cv2.resize(..., interpolation=cv2.INTER_AREA)`` called per image from Python.

For each case (a crop of a decoded image resized to 224x224, or to 100x100 for the 3x
case), C = 3 and C = 1, one thread: microseconds per image of

* ``cv2``: ``cv2.resize(src[crop], (224, 224), dst=out[i], interpolation=INTER_AREA)`` in a
  Python loop over a batch (what the decoder does today: the call overhead included);
* ``kernel``: one compiled call that loops over the same batch calling ``resize_area``
  (what the decoder will do), and its ratio to ``cv2``; ``max diff`` compares the two
  outputs (the kernel is meant to be bit-exact: 0).

Times are the best of repeats of the calling thread's CPU time (``time.thread_time``: the
shared machines these run on preempt often, which wall time would count; the two
contenders alternate), after a warm-up, with ``cv2.setNumThreads(1)`` so that OpenCV works
in the calling thread too. The batch resizes crops of 4 source images in turn (smooth
gradients plus noise), which stay in cache as a just decoded image would; the outputs are
a fresh (n, 224, 224, C) batch.

    python benchmarks/resize_kernel.py [--images 64] [--repeats 7]
"""
import argparse
import time

import cv2
import numpy as np
from numba import njit

from ffcv_ops.kernels.resize import resize_area, resize_area_scratch_size

# (name, source height, width, crop height, width, output height, width)
CASES = [
    ('crop 350x300 -> 224 (shrink 1.6/1.3)', 500, 375, 350, 300, 224, 224),
    ('whole 256x192 -> 224 (mixed)', 256, 192, 256, 192, 224, 224),
    ('crop 448x448 -> 224 (2x integer)', 500, 475, 448, 448, 224, 224),
    ('crop 120x100 -> 224 (enlarge)', 256, 192, 120, 100, 224, 224),
    ('crop 300x300 -> 100 (3x integer)', 500, 375, 300, 300, 100, 100),
    ('crop 224x224 -> 224 (same size: copy)', 256, 341, 224, 224, 224, 224),
]


@njit(nogil=True, cache=True)
def resize_batch(sources, top, left, height, width, out, scratch):
    for i in range(out.shape[0]):
        resize_area(sources[i % sources.shape[0]], top, left, height, width, out[i], scratch)


def cv2_batch(sources, top, left, height, width, out):
    size = (out.shape[2], out.shape[1])
    for i in range(out.shape[0]):
        cv2.resize(sources[i % sources.shape[0], top:top + height, left:left + width], size, dst=out[i],
                   interpolation=cv2.INTER_AREA)


def images(rng, n, h, w, c):
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 0.4 + y * 0.3)[None, :, :, None] + rng.normal(0, 12, (n, h, w, c))
    return np.clip(base % 256, 0, 255).astype(np.uint8)


def best_times(fns, repeats):
    """The shortest time of each function over ``repeats`` rounds that run them in turn."""
    for fn in fns:
        fn()
    best = [float('inf')] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            start = time.thread_time()
            fn()
            best[k] = min(best[k], time.thread_time() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=7)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    n = args.images
    print(f'{"case":40s} {"C":>2s} {"cv2 us":>8s} {"kernel us":>10s} {"kernel/cv2":>11s} {"max diff":>9s}')
    for channels in (3, 1):
        for name, sh, sw, ch, cw, oh, ow in CASES:
            sources = images(rng, 4, sh, sw, channels)
            top, left = (sh - ch) // 2, (sw - cw) // 2
            ref = np.empty((n, oh, ow, channels), np.uint8)
            out = np.empty((n, oh, ow, channels), np.uint8)
            scratch = np.empty(resize_area_scratch_size(cw, ow, channels), np.float32)
            if channels == 1:             # cv2 takes and gives 2-D arrays for one channel
                run_cv2 = lambda: cv2_batch(sources[..., 0], top, left, ch, cw, ref[..., 0])  # noqa: E731
            else:
                run_cv2 = lambda: cv2_batch(sources, top, left, ch, cw, ref)  # noqa: E731
            t_cv2, t_kernel = best_times(
                [run_cv2, lambda: resize_batch(sources, top, left, ch, cw, out, scratch)], args.repeats)
            diff = np.abs(out.astype(np.int16) - ref).max()
            print(f'{name:40s} {channels:2d} {t_cv2 / n * 1e6:8.1f} {t_kernel / n * 1e6:10.1f} '
                  f'{t_kernel / t_cv2:11.2f} {diff:9d}')


if __name__ == '__main__':
    main()
