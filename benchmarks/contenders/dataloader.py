"""The PyTorch DataLoader with PIL: what users run today (torchvision's transforms, written out,
since torchvision has no CPU build here).

spec keys: ``batch_size``, ``workers`` (worker processes: as many as the other contenders'
threads), ``seed``; ``JpegPIL``: ``root``, ``images``, ``classes``, ``output_size``; ``CifarPIL``:
``npz`` (``images`` uint8 (N, 32, 32, 3), ``labels``).
"""
import random

import numpy as np
from harness import timed_epoch, timed_warmup

SCALE = (0.08, 1.0)
RATIO = (3 / 4, 4 / 3)


def rrc_box(rand, width, height, scale=SCALE, ratio=RATIO):
    """A random-resized-crop box ``(x, y, w, h)``, sampled as torchvision samples it.

    ``rand`` is a ``random.Random``. Ten tries at a random area fraction in ``scale`` and
    log-uniform aspect ratio in ``ratio``; then the largest centred crop within ``ratio``.
    """
    import math
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rand.uniform(*scale)
        aspect = math.exp(rand.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rand.randint(0, width - w), rand.randint(0, height - h), w, h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


class PILRandomResizedCropFlip:
    """Original JPEG -> PIL random resized crop (bilinear) + flip -> uint8 CHW tensor."""

    def __init__(self, paths, labels, size):
        self.paths, self.labels, self.size = paths, labels, size
        self.rand = random.Random()  # reseeded per worker by _worker_init

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        import torch
        from PIL import Image
        with Image.open(self.paths[index]) as image:
            image = image.convert('RGB')
        x, y, w, h = rrc_box(self.rand, image.width, image.height)
        image = image.resize((self.size, self.size), resample=Image.BILINEAR, box=(x, y, x + w, y + h))
        if self.rand.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1), self.labels[index]


class PILCifar:
    """torchvision's CIFAR-10 recipe: RandomCrop(32, padding=2, fill=mean) + flip + ToTensor +
    Normalize, on PIL images made from an in-memory uint8 array (as torchvision's CIFAR10 does)."""

    def __init__(self, images, labels, mean, std, padding=2):
        self.images, self.labels, self.padding = images, labels, padding
        self.mean, self.std = np.asarray(mean) / 255, np.asarray(std) / 255
        self.fill = tuple(int(m) for m in mean)
        self.rand = random.Random()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        import torch
        from PIL import Image, ImageOps
        image = Image.fromarray(self.images[index])
        p = self.padding
        padded = ImageOps.expand(image, border=p, fill=self.fill)
        x, y = self.rand.randint(0, 2 * p), self.rand.randint(0, 2 * p)
        image = padded.crop((x, y, x + image.width, y + image.height))
        if self.rand.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        tensor = torch.from_numpy(np.asarray(image)).permute(2, 0, 1).float().div(255)
        mean = torch.as_tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return (tensor - mean) / std, int(self.labels[index])


def _worker_init(worker_id):
    import torch
    from torch.utils.data import get_worker_info
    get_worker_info().dataset.rand.seed(torch.initial_seed() % 2**32)


class _DataLoaderContender:
    def __init__(self, spec):
        self.spec = spec

    def dataset(self):
        raise NotImplementedError

    def warmup(self):
        spec = self.spec

        def build():
            import torch
            from torch.utils.data import DataLoader
            torch.manual_seed(spec['seed'])
            # persistent workers: later epochs do not pay for starting processes (its best case)
            return DataLoader(self.dataset(), batch_size=spec['batch_size'], shuffle=True,
                              num_workers=spec['workers'], drop_last=True,
                              persistent_workers=spec['workers'] > 0, worker_init_fn=_worker_init)

        self.loader, result = timed_warmup(build, ['torch', 'torch.utils.data', 'PIL.Image'])
        return result

    def epoch(self):
        return timed_epoch(self.loader)


class JpegPIL(_DataLoaderContender):
    def dataset(self):
        from imagenet_like import class_index, make_image_folder
        s = self.spec
        paths = make_image_folder(s['root'], s['images'], s['classes'], s['seed'])
        return PILRandomResizedCropFlip(paths, [class_index(p) for p in paths], s['output_size'])


class CifarPIL(_DataLoaderContender):
    def dataset(self):
        from contenders.ffcv_api import CIFAR_MEAN, CIFAR_STD
        data = np.load(self.spec['npz'])
        return PILCifar(data['images'], data['labels'], CIFAR_MEAN, CIFAR_STD)
