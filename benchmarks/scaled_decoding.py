"""Scaled JPEG decoding: how far its pixels are from full decoding, and how much faster it is.

    python benchmarks/scaled_decoding.py [--images 600] [--rounds 5]

For the suite's JPEG files (max 256 and max 512 px, in the suite's cache folder: run
``suite.py --only jpeg256,jpeg512`` once to make them) and several decoders (random
resized crops of 224, 160 and 128 px, as in the low-resolution epochs of progressive
resizing; centre crops of 224/256 of the short side to 224, 112 and 56 px), the batches are
decoded three ways from the same crops (same seed):

- ``full``: decoded at full size, crop resized with ``INTER_AREA`` (``scaled_decoding=False``);
- ``scaled``: decoded at 1/2, 1/4 or 1/8 when the crop will be shrunk 2x or more (the default);
- ``linear``: decoded at full size, crop resized with ``INTER_LINEAR`` instead of ``INTER_AREA``
  (a change of resize filter: the yardstick for "as close as a filter change").

It prints the mean absolute difference (levels of 0-255, over all pixels and channels) of
``scaled`` and of ``linear`` from ``full``, and images/s of ``full`` and ``scaled`` on one
thread (median of rounds, the two alternating in one process so that they see the same
machine).
"""
import argparse
import os
import time

import numpy as np


def batches(path, decoder, images, threads=1):
    from ffcv_loader import Loader, OrderOption
    from ffcv_ops import ToTensor  # noqa: F401  (the loader's default tail for unnamed fields)
    loader = Loader(path, batch_size=images, num_workers=threads, order=OrderOption.SEQUENTIAL,
                    indices=np.arange(images), seed=0, pipelines={'image': [decoder], 'label': None}, drop_last=False)
    return np.concatenate([np.asarray(b[0]) for b in loader])


def images_per_second(path, decoder, images):
    start = time.perf_counter()
    count = len(batches(path, decoder, images))
    return count / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', type=int, default=600)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--cache-dir', default=os.path.expanduser('~/.cache/ffcv-benchmarks'))
    args = parser.parse_args(argv)
    import cv2
    from ffcv_ops import CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder
    from ffcv_ops.libjpeg import libjpeg_status

    class LinearRRC(RandomResizedCropRGBImageDecoder):
        interpolation = cv2.INTER_LINEAR

    class LinearCenter(CenterCropRGBImageDecoder):
        interpolation = cv2.INTER_LINEAR

    print(libjpeg_status())
    cases = [('RRC 224', lambda **k: RandomResizedCropRGBImageDecoder((224, 224), **k), LinearRRC((224, 224))),
             ('centre crop 224', lambda **k: CenterCropRGBImageDecoder((224, 224), 224 / 256, **k),
              LinearCenter((224, 224), 224 / 256)),
             ('RRC 160 (low-res epoch)', lambda **k: RandomResizedCropRGBImageDecoder((160, 160), **k),
              LinearRRC((160, 160))),
             ('RRC 128', lambda **k: RandomResizedCropRGBImageDecoder((128, 128), **k), LinearRRC((128, 128))),
             ('centre crop 112', lambda **k: CenterCropRGBImageDecoder((112, 112), 224 / 256, **k),
              LinearCenter((112, 112), 224 / 256)),
             ('centre crop 56', lambda **k: CenterCropRGBImageDecoder((56, 56), 224 / 256, **k),
              LinearCenter((56, 56), 224 / 256))]
    print(f"\n{args.images} images per file; MAD: mean absolute difference from full decoding, 0-255 levels; "
          f"images/s: one thread, median of {args.rounds} rounds\n")
    print("| file | decoder | MAD scaled | MAD INTER_LINEAR | full img/s | scaled img/s | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for max_side in (256, 512):
        path = os.path.join(args.cache_dir, f'imagenet_like_n3000_c10_s0_max{max_side}_q90.beton')
        if not os.path.exists(path):
            raise SystemExit(f"{path} is missing: run `python suite.py --only jpeg256,jpeg512` once")
        for name, make, linear in cases:
            full = batches(path, make(scaled_decoding=False), args.images).astype(np.int16)
            scaled = batches(path, make(), args.images).astype(np.int16)
            filtered = batches(path, linear, args.images).astype(np.int16)
            rates = {True: [], False: []}
            for _ in range(args.rounds + 1):
                for flag in (False, True):
                    rates[flag].append(images_per_second(path, make(scaled_decoding=flag), args.images))
            slow, fast = np.median(rates[False][1:]), np.median(rates[True][1:])   # the first round warms up
            print(f"| max {max_side} | {name} | {np.abs(scaled - full).mean():.2f} | "
                  f"{np.abs(filtered - full).mean():.2f} | {slow:,.0f} | {fast:,.0f} | {fast / slow:.2f}x |",
                  flush=True)


if __name__ == '__main__':
    main()
