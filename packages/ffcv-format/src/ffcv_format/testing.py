"""Helpers for tests of ffcv_format and the packages built on it."""
import numpy as np

from .reader import Reader
from .writer import DatasetWriter


def write_dataset(path, fields, samples, chunksize=100, **writer_kwargs):
    """Write `samples` (a sequence of tuples) with `fields`; return a Reader of the file."""
    writer_kwargs.setdefault('progress', False)
    writer_kwargs.setdefault('page_size', 1 << 21)
    DatasetWriter(path, fields, **writer_kwargs).from_indexed_dataset(samples, chunksize=chunksize)
    return Reader(path)


def photo_like_image(rng, height, width, channels=3):
    """A uint8 image with smooth structure plus noise, which compresses like a photo."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    fx, fy, phase = rng.uniform(0.01, 0.15), rng.uniform(0.01, 0.15), rng.uniform(0, 6.3)
    luminance = 80 * np.sin(fx * x + phase) * np.cos(fy * y)
    planes = [127 + rng.uniform(-40, 40) + luminance * rng.uniform(0.6, 1.0)
              + rng.normal(0, 2, (height, width)) for _ in range(channels)]
    return np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)


def mean_abs_diff(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
