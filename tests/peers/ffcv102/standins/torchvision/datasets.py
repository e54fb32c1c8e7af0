"""``CIFAR10`` generated instead of downloaded: 32x32 RGB images (PIL) and labels 0..9."""
import os

import numpy as np
from PIL import Image

_SIZE = 32


class CIFAR10:
    """Deterministic CIFAR-like samples: ``dataset[i]`` is ``(PIL.Image 32x32 RGB, label)``.

    Each image is a smooth colour gradient with a filled disc and some noise, drawn from a
    generator seeded by (train, index), so the same index always gives the same image.
    """

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        self.root, self.train = root, bool(train)
        self.transform, self.target_transform = transform, target_transform
        # CIFAR-10's sizes; STANDIN_CIFAR10_SIZE=N keeps the first N (of each split) for quick runs
        self._length = 50_000 if self.train else 10_000
        if os.environ.get('STANDIN_CIFAR10_SIZE'):
            self._length = min(self._length, int(os.environ['STANDIN_CIFAR10_SIZE']))

    def __len__(self):
        return self._length

    def __getitem__(self, index):
        if not 0 <= index < self._length:
            raise IndexError(index)
        rng = np.random.default_rng([int(self.train), int(index)])
        label = int(rng.integers(10))
        y, x = np.mgrid[0:_SIZE, 0:_SIZE].astype(np.float32) / (_SIZE - 1)
        start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        angle = rng.uniform(0, 2 * np.pi)
        t = np.clip(0.5 + 0.5 * (np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5)) * 1.4, 0, 1)
        image = start * (1 - t[..., None]) + end * t[..., None]
        cy, cx, r = rng.uniform(0.25, 0.75, 2).tolist() + [rng.uniform(0.1, 0.3)]
        disc = (y - cy) ** 2 + (x - cx) ** 2 < r ** 2
        image[disc] = rng.uniform(0, 255, 3) * (0.6 + 0.04 * label)
        image += rng.normal(0, 6, image.shape)
        sample = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), 'RGB')
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return sample, label
