"""The demo's dataset: scikit-learn's handwritten digits, scaled up and written to .beton files.

scikit-learn ships 1,797 8x8 images of the digits 0-9 (16 grey levels, from the UCI
"optical recognition of handwritten digits" set). They are scaled up to ``size`` x ``size``
RGB, split into a training and a test part, and each part is written to its own ``.beton``
file as JPEGs of the given quality, with the usual two fields ``image`` and ``label``.
"""
from dataclasses import dataclass

import numpy as np

#: the message of a missing scikit-learn (the demo's optional dependency)
INSTALL_HINT = "the demo needs scikit-learn: pip install 'ffcv[demo]'"

#: the largest pixel value of scikit-learn's digits (they go from 0, white paper, to 16)
DIGIT_MAX = 16


@dataclass
class DigitSplit:
    """Images (N x size x size x 3 uint8) and labels (N int64) of one part of the digits."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple:
        """``(image, label)``: what ``DatasetWriter.from_indexed_dataset`` reads."""
        return self.images[index], int(self.labels[index])


def load_digits_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as ``(size x size x 3 uint8 images, int64 labels)``.

    The 8x8 images are stretched from 0..16 to 0..255 and scaled up with bilinear
    interpolation (as a blurred pen stroke, not blocks). Raises ``ImportError`` with
    :data:`INSTALL_HINT` without scikit-learn.

    >>> images, labels = load_digits_images(32)     # doctest: +SKIP
    >>> images.shape, labels[:5].tolist()           # doctest: +SKIP
    ((1797, 32, 32, 3), [0, 1, 2, 3, 4])
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    import cv2

    digits = load_digits()
    grey = np.clip(digits.images * (255 / DIGIT_MAX), 0, 255).round().astype(np.uint8)
    images = np.empty((len(grey), size, size, 3), dtype=np.uint8)
    for i, small in enumerate(grey):
        images[i] = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)[:, :, None]
    return images, digits.target.astype(np.int64)


def split_digits(images: np.ndarray, labels: np.ndarray, *, test_fraction: float, samples: int | None,
                 seed: int) -> tuple[DigitSplit, DigitSplit]:
    """A random ``(train, test)`` split, with the same share of each digit in both parts.

    ``samples`` images (all when None) are drawn first, each digit's count in proportion to
    its share of ``labels``; then ``test_fraction`` of each digit's images (at least one)
    go to the test part. The draws come from ``seed``.
    """
    rng = np.random.default_rng(seed)
    digits, counts = np.unique(labels, return_counts=True)
    quotas = _proportional_counts(counts, len(labels) if samples is None else samples)
    train, test = [], []
    for digit, quota in zip(digits, quotas):
        members = rng.permutation(np.flatnonzero(labels == digit))[:quota]
        n_test = max(1, round(quota * test_fraction))
        test.append(members[:n_test])
        train.append(members[n_test:])
    train_idx, test_idx = rng.permutation(np.concatenate(train)), np.sort(np.concatenate(test))
    return DigitSplit(images[train_idx], labels[train_idx]), DigitSplit(images[test_idx], labels[test_idx])


def _proportional_counts(counts: np.ndarray, total: int) -> np.ndarray:
    """``total`` shared out in proportion to ``counts`` (largest remainders get the rest)."""
    shares = counts * total / counts.sum()
    quotas = np.floor(shares).astype(np.int64)
    quotas[np.argsort(quotas - shares, kind='stable')[:total - quotas.sum()]] += 1
    return quotas


def write_beton(path: str, split: DigitSplit, *, jpeg_quality: int, workers: int, progress: bool) -> None:
    """Write ``split`` to ``path`` (replaced if there): ``image`` as JPEGs, ``label`` as int.

    The writer shows its own progress bar (on stderr) unless ``progress`` is false.
    """
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter
    from ffcv_format.spec import MIN_PAGE_SIZE

    fields = {'image': RGBImageField(write_mode='jpg', jpeg_quality=jpeg_quality), 'label': IntField()}
    # the smallest page (2 MiB): the default 8 MiB pages would be mostly empty for these small files
    DatasetWriter(path, fields, page_size=MIN_PAGE_SIZE, num_workers=workers,
                  progress=progress).from_indexed_dataset(split, chunksize=64)
