"""Writer throughput on JPEG images: worker threads against the encode ceiling.

    python benchmarks/writer_workers.py [--images 600] [--max-resolution 256] [--quality 90]

Images of ImageNet-like sizes (about 500x375) are cut from the real photos that
scikit-image ships (synthetic photo-like images if it is not installed), held in memory,
and written with RGBImageField(write_mode='jpg', max_resolution, jpeg_quality). Printed,
all measured in this run:
  - the single-thread encode rate: resize + JPEG encode in a plain loop (the work the
    writer does per image, without the writer);
  - DatasetWriter with 1, 2, ... N worker threads, and its ratio to N x that rate;
  - a process pool (fork) of N processes doing the same resize + encode and returning
    the bytes (what worker processes could reach before writing anything).
"""
import argparse
import multiprocessing
import os
import tempfile
import time

import numpy as np


def load_images(count, rng):
    try:
        from skimage import data
        photos = [getattr(data, name)() for name in
                  ('astronaut', 'coffee', 'chelsea', 'rocket', 'hubble_deep_field', 'immunohistochemistry')]
        photos = [p[:, :, :3] for p in photos if p.ndim == 3]
        source = 'scikit-image photos'
    except ImportError:
        from ffcv_format.testing import photo_like_image
        photos = [photo_like_image(rng, 600, 800) for _ in range(4)]
        source = 'synthetic photo-like images (pip install scikit-image for real photos)'
    import cv2
    images = []
    for k in range(count):
        photo = photos[k % len(photos)]
        h, w = photo.shape[:2]
        ch, cw = int(rng.integers(h // 2, h + 1)), int(rng.integers(w // 2, w + 1))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out_w = int(np.clip(rng.normal(500, 60), 300, 700))
        out_h = int(np.clip(out_w * rng.choice([0.75, 0.75, 1.0, 1.33, 0.66]), 200, 800))
        images.append(cv2.resize(photo[y:y + ch, x:x + cw], (out_w, out_h), interpolation=cv2.INTER_AREA))
    return images, source


_FIELD = None
_IMAGES = None


def _encode_one(index):
    from ffcv_format.fields.image import encode_jpeg
    return encode_jpeg(_FIELD._resize(_IMAGES[index]), _FIELD.jpeg_quality).size


def main():
    global _FIELD, _IMAGES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=600)
    parser.add_argument('--max-resolution', type=int, default=256)
    parser.add_argument('--quality', type=int, default=90)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()

    from ffcv_format import DatasetWriter, IntField, RGBImageField
    cores = len(os.sched_getaffinity(0))
    images, source = load_images(args.images, np.random.default_rng(0))
    sizes = np.array([im.shape[:2] for im in images])
    print(f"{len(images)} images from {source}; median size {int(np.median(sizes[:, 1]))}x"
          f"{int(np.median(sizes[:, 0]))}; {cores} cores")
    _FIELD = RGBImageField(write_mode='jpg', max_resolution=args.max_resolution, jpeg_quality=args.quality)
    _IMAGES = images

    def best(fn):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return len(images) / sorted(times)[len(times) // 2]

    single = best(lambda: [_encode_one(i) for i in range(len(images))])
    print(f"single-thread resize+encode: {single:8.1f} images/s (ceiling with {cores} cores: {single * cores:.1f})")
    samples = [(im, k) for k, im in enumerate(images)]
    with tempfile.TemporaryDirectory() as tmp:
        for workers in range(1, cores + 1):
            def write():
                DatasetWriter(os.path.join(tmp, 'w.beton'), {'image': _FIELD, 'label': IntField()},
                              num_workers=workers, progress=False, overwrite=True
                              ).from_indexed_dataset(samples, chunksize=16)
            rate = best(write)
            print(f"DatasetWriter, {workers} thread(s):  {rate:8.1f} images/s = "
                  f"{rate / (single * workers):.2f} x ({workers} x single-thread rate)")
    with multiprocessing.get_context('fork').Pool(cores) as pool:
        pool.map(_encode_one, range(cores))  # start the workers
        rate = best(lambda: pool.map(_encode_one, range(len(images)), chunksize=16))
    print(f"process pool, {cores} processes:   {rate:8.1f} images/s = "
          f"{rate / (single * cores):.2f} x ({cores} x single-thread rate), encoding only")


if __name__ == '__main__':
    main()
