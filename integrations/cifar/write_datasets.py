"""Convert CIFAR-10's python pickle files into the two .beton files the recipe trains on.

    python write_datasets.py SOURCE [--out-dir .] [--workers -1]

SOURCE is the ``cifar-10-batches-py`` folder (``data_batch_1`` .. ``data_batch_5`` and
``test_batch``) or the ``cifar-10-python.tar.gz`` archive it comes in (read without
extracting). Writes ``cifar_train.beton`` (50,000 samples) and ``cifar_test.beton``
(10,000): an ``image`` field (``RGBImageField``, raw 32x32 pixels, so nothing is lost) and a
``label`` field (``IntField``, 0-9).

Each pickle file is a dict with ``b'data'``, an ``N x 3072`` uint8 array holding each image
channel after channel (1024 red values, then green, then blue, each row by row), and
``b'labels'``, N integers. The files are read with an unpickler that accepts numpy arrays
and nothing else, so a tampered file cannot run code.
"""
import argparse
import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import Sequence

import numpy as np
from ffcv.fields import IntField, RGBImageField
from ffcv.writer import DatasetWriter

TRAIN_BATCHES = tuple(f'data_batch_{i}' for i in range(1, 6))
TEST_BATCHES = ('test_batch',)
IMAGE_SIDE = 32


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, bytes and numpy arrays; refuses any other class."""

    _ALLOWED = frozenset({'_reconstruct', 'scalar', 'ndarray', 'dtype'})
    _MODULES = frozenset({'numpy', 'numpy.core.multiarray', 'numpy._core.multiarray', 'numpy.core.numeric',
                          'numpy._core.numeric'})

    def find_class(self, module, name):
        if (module, name) == ('_codecs', 'encode'):   # how protocol-2 pickles made by Python 3 hold bytes
            import codecs
            return codecs.encode
        if module in self._MODULES and name in self._ALLOWED:
            if name in ('ndarray', 'dtype'):
                return getattr(np, name)
            try:
                from numpy._core import multiarray
            except ImportError:   # numpy 1.x
                from numpy.core import multiarray
            return getattr(multiarray, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only "
                                     f"arrays, lists and bytes")


def read_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR-10 batch as ``(images N x 32 x 32 x 3 uint8, labels N int64)``."""
    batch = _ArraysOnlyUnpickler(io.BytesIO(data), encoding='bytes').load()
    if not isinstance(batch, dict) or b'data' not in batch or b'labels' not in batch:
        found = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"{where}: not a CIFAR-10 batch (expected a dict with b'data' and b'labels', "
                         f"found {found})")
    pixels = np.asarray(batch[b'data'])
    labels = np.asarray(batch[b'labels'], dtype=np.int64)
    side = IMAGE_SIDE
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3 * side * side:
        raise ValueError(f"{where}: b'data' must be an N x {3 * side * side} uint8 array, "
                         f"got {pixels.shape} {pixels.dtype}")
    if labels.shape != (len(pixels),):
        raise ValueError(f"{where}: {len(pixels)} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{where}: labels must be 0-9, found {labels.min()}..{labels.max()}")
    # channel-planar rows -> (N, 3, 32, 32) -> (N, 32, 32, 3), the layout image fields take
    images = np.ascontiguousarray(pixels.reshape(-1, 3, side, side).transpose(0, 2, 3, 1))
    return images, labels


def read_split(source: str | os.PathLike, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The batches ``names`` of ``source`` (the folder or the .tar.gz), concatenated in order."""
    source = Path(source)
    blobs = []
    if source.is_dir():
        for name in names:
            path = source / name
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: {source} should hold {', '.join(names)}")
            blobs.append((path.read_bytes(), str(path)))
    elif tarfile.is_tarfile(source):
        with tarfile.open(source) as archive:
            members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
            for name in names:
                if name not in members:
                    raise FileNotFoundError(f"{source} has no file {name}")
                blobs.append((archive.extractfile(members[name]).read(), f"{source}:{members[name].name}"))
    else:
        raise FileNotFoundError(f"{source} is neither the cifar-10-batches-py folder nor its .tar.gz archive")
    parts = [read_batch(data, where) for data, where in blobs]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class _ImagesAndLabels:
    """The (image, label) samples DatasetWriter reads."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])


def write_split(images: np.ndarray, labels: np.ndarray, path: str | os.PathLike, workers: int = -1) -> None:
    """Write ``images`` (N x 32 x 32 x 3 uint8) and ``labels`` to ``path``: raw pixels and int labels."""
    writer = DatasetWriter(str(path), {'image': RGBImageField(write_mode='raw'), 'label': IntField()},
                           num_workers=workers)
    writer.from_indexed_dataset(_ImagesAndLabels(images, labels))


def write_datasets(source: str | os.PathLike, out_dir: str | os.PathLike = '.', workers: int = -1) -> dict:
    """Write ``cifar_train.beton`` and ``cifar_test.beton`` into ``out_dir``; return
    ``{path: number of samples}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for filename, names in (('cifar_train.beton', TRAIN_BATCHES), ('cifar_test.beton', TEST_BATCHES)):
        images, labels = read_split(source, names)
        write_split(images, labels, out_dir / filename, workers)
        written[str(out_dir / filename)] = len(labels)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='cifar-10-batches-py folder or cifar-10-python.tar.gz')
    parser.add_argument('--out-dir', default='.', help='where to write the .beton files')
    parser.add_argument('--workers', type=int, default=-1, help='encoding threads (-1: all cores)')
    args = parser.parse_args(argv)
    for path, count in write_datasets(args.source, args.out_dir, args.workers).items():
        print(f"wrote {path}: {count} samples")


if __name__ == '__main__':
    main()
