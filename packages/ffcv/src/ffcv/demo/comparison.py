"""The demo's throughput comparison: the ffcv loader against a PyTorch DataLoader doing the
same job (the same JPEG bytes decoded, the same random shift, the same batches).

Only data loading is timed: whole epochs over the training file, for about a second,
after one untimed epoch (ffcv compiles its pipeline on first use, the DataLoader starts its
worker processes, and both find the file in the page cache).
"""
import time
from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np
import torch
from tqdm import tqdm


class JpegDigitsDataset(torch.utils.data.Dataset):
    """The JPEGs and labels of a ``.beton`` file's ``image`` and ``label`` fields, decoded
    with OpenCV and shifted by up to ``shift`` pixels each way (black coming in), as
    ``(H x W x 3 uint8 tensor, label)``: what one would write for a DataLoader.

    The shifts come from a generator each worker process seeds from its torch seed.
    """

    def __init__(self, path: str, shift: int):
        from ffcv_format import Reader

        with Reader(path) as reader:
            self.jpegs = [bytes(reader.stored_bytes(i, 'image')) for i in range(len(reader))]
            self.labels = [int(label) for label in reader.metadata['label']]
        self.shift = shift
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = cv2.imdecode(np.frombuffer(self.jpegs[index], np.uint8), cv2.IMREAD_COLOR)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        dy, dx = self.rng.integers(-self.shift, self.shift + 1, size=2)
        shifted = np.zeros_like(image)
        height, width = image.shape[:2]
        shifted[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
            image[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
        return torch.from_numpy(shifted), self.labels[index]


def _seed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(torch.initial_seed() % 2**63)


def torch_dataloader(path: str, *, batch_size: int, workers: int, seed: int,
                     shift: int) -> torch.utils.data.DataLoader:
    """A DataLoader over :class:`JpegDigitsDataset` with ``workers`` processes, shuffled,
    full batches only, like the ffcv training loader (yields NHWC batches; permute them)."""
    return torch.utils.data.DataLoader(JpegDigitsDataset(path, shift), batch_size=batch_size, shuffle=True,
                                       drop_last=True, num_workers=workers, persistent_workers=True,
                                       worker_init_fn=_seed_worker,
                                       generator=torch.Generator().manual_seed(seed))


@dataclass
class Throughput:
    """Images a loader handed out in ``epochs`` timed epochs, and the seconds they took."""

    name: str
    images: int
    epochs: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds


def time_epochs(name: str, loader: Iterable, *, min_seconds: float = 1.0, max_epochs: int = 50,
                progress: bool = True) -> Throughput:
    """Run ``loader`` for an untimed epoch, then time whole epochs until ``min_seconds`` have
    passed (or ``max_epochs`` were run), touching nothing but the batches.

    One epoch of a small file takes a few hundredths of a second: timing one alone would
    mostly measure the noise of a shared machine.
    """
    for _ in tqdm(loader, desc=f'{name} (warm-up)', unit='batch', leave=False, disable=not progress):
        pass
    images = epochs = 0
    bar = tqdm(desc=name, unit='img', unit_scale=True, leave=False, disable=not progress)
    started = elapsed = time.perf_counter()
    while epochs < max_epochs and (epochs == 0 or elapsed - started < min_seconds):
        for batch_images, _ in loader:
            images += len(batch_images)
            bar.update(len(batch_images))
        epochs += 1
        elapsed = time.perf_counter()
    bar.close()
    return Throughput(name, images, epochs, elapsed - started)
