"""Write a small image dataset into a .beton file and train-style load it for two epochs.

    python integrations/quickstart.py [--samples 2000] [--workers -1] [--dir /tmp]

FFCV 1.0's quickstart, with FFCV 1.0's import paths: a map-style dataset of images and
labels is converted with DatasetWriter, then loaded with random resized crops, flips and
Cutout into uint8 NCHW torch batches. Prints what it does and how fast.
"""
import argparse
import os
import time

import numpy as np
import torch

from ffcv.fields import IntField, RGBImageField
from ffcv.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcv.loader import Loader, OrderOption
from ffcv.transforms import Cutout, RandomHorizontalFlip, ToTensor, ToTorchImage
from ffcv.writer import DatasetWriter
from ffcv_format.testing import photo_like_image


class PhotoLikeDataset:
    """Stands for your dataset: ``__len__`` and ``__getitem__`` giving (HxWx3 uint8, label)."""

    def __init__(self, n, seed=0):
        self.n, self.seed = n, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, i])
        h, w = (375, 500) if i % 4 else (500, 375)
        return photo_like_image(rng, h, w), i % 10


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--samples', type=int, default=2000)
    parser.add_argument('--workers', type=int, default=-1, help='loader threads (-1: all cores)')
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--dir', default='/tmp', help='where to write quickstart.beton')
    args = parser.parse_args()

    path = os.path.join(args.dir, 'quickstart.beton')
    t0 = time.perf_counter()
    writer = DatasetWriter(path, {'image': RGBImageField(max_resolution=256, jpeg_quality=90),
                                  'label': IntField()}, overwrite=True)
    writer.from_indexed_dataset(PhotoLikeDataset(args.samples))
    print(f"wrote {path}: {args.samples} samples, {os.path.getsize(path) / 2**20:.1f} MiB "
          f"in {time.perf_counter() - t0:.1f} s")

    loader = Loader(path, batch_size=args.batch_size, num_workers=args.workers, order=OrderOption.RANDOM,
                    seed=0, pipelines={
                        'image': [RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip(),
                                  Cutout(), ToTensor(), ToTorchImage()],
                        'label': [IntDecoder(), ToTensor()]})
    for epoch in range(2):
        t0, seen = time.perf_counter(), 0
        for images, labels in loader:
            assert images.shape[1:] == (3, 224, 224) and images.dtype == torch.uint8
            seen += len(images)
        elapsed = time.perf_counter() - t0
        print(f"epoch {epoch}: {seen} images in {len(loader)} batches of {tuple(images.shape)} "
              f"{images.dtype}, {seen / elapsed:,.0f} images/s ({loader.num_workers} threads)")


if __name__ == '__main__':
    main()
