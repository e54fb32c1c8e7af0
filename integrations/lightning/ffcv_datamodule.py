"""A LightningDataModule over ffcv Loaders, resumable mid-epoch from Lightning checkpoints.

>>> datamodule = FFCVDataModule('train.beton', 'val.beton', batch_size=256,
...                             train_pipelines=lambda device: {...}, val_pipelines=lambda device: {...})
>>> trainer.fit(model, datamodule=datamodule)                       # doctest: +SKIP
>>> trainer.fit(model, datamodule=datamodule, ckpt_path='last.ckpt')  # continues mid-epoch

How it meets Lightning's habits:

- The loaders are made in ``setup()``, which Lightning calls in every process after the
  process group exists, so ``Loader(distributed=True)`` can ask torch.distributed for the
  rank and world size. Pipelines are given as functions of the device (``trainer``'s
  ``root_device``), because a pipeline's operations belong to one loader and ``ToDevice``
  must name this process's device.
- ``train_dataloader()`` returns a :class:`LazyEpochs` over the same ``Loader`` every time.
  Each ``iter()`` of a ``Loader`` starts its next epoch (a new order, new augmentations,
  worker threads decoding ahead), but Lightning calls ``iter()`` once more than it trains:
  to check that a loader that is not a torch ``DataLoader`` is iterable, it makes an
  iterator and drops it. ``LazyEpochs`` starts the loader's epoch at the first batch asked
  for, so that probe costs nothing, and Lightning's epoch ``e`` is the loader's epoch ``e``.
  ``len()`` gives Lightning the batches per epoch, so it never fetches a batch ahead.
- Resuming: Lightning saves ``state_dict()`` (the train loader's position: epoch and batches
  handed out) into every checkpoint and hands it to ``load_state_dict()`` when training
  resumes; the next epoch started then gives exactly the batches the interrupted epoch had
  not given yet. (Lightning >= 2.2 also saves and restores the state of any loader with
  ``state_dict``/``load_state_dict``, as ``LazyEpochs`` has: it is the same state, and
  loading it twice changes nothing.)
"""
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import torch
from ffcv.loader import Loader, OrderOption

#: ``device -> {field name: [operations] or None}``: the pipelines of one loader
PipelinesFactory = Callable[[torch.device], dict]


class LazyEpochs:
    """What Lightning iterates: each ``iter()`` is one epoch of ``loader``, started when its
    first batch is asked for (an iterator made and dropped unused starts nothing).

    ``len()``, ``state_dict()`` and ``load_state_dict()`` are the loader's.
    """

    def __init__(self, loader: Loader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        return self._epoch()

    def _epoch(self) -> Iterator:
        # a generator: nothing here runs, and iter(loader) is not called, before the first next()
        yield from self.loader

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)


class FFCVDataModule(L.LightningDataModule):
    """Train (and optionally validation) batches from ``.beton`` files.

    ``batch_size`` is per process. Training reads a random order (``train_order``), a
    different one every epoch, dropping the last partial batch; validation reads the file in
    order, keeping it. With several processes both are sharded with ``distributed=True``
    (every sample once per epoch across processes; the last few repeated so that the
    processes get equally many batches, as with torch's DistributedSampler).
    """

    def __init__(self, train_path: str, val_path: str | None, batch_size: int,
                 train_pipelines: PipelinesFactory, val_pipelines: PipelinesFactory | None = None,
                 num_workers: int = -1, seed: int = 0, os_cache: bool = True,
                 train_order: OrderOption = OrderOption.RANDOM, batches_ahead: int = 3):
        super().__init__()
        self.train_path, self.val_path = train_path, val_path
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.os_cache, self.train_order, self.batches_ahead = os_cache, train_order, batches_ahead
        self.train_pipelines, self.val_pipelines = train_pipelines, val_pipelines or train_pipelines
        self.train_loader: Loader | None = None
        self.val_loader: Loader | None = None
        self._state_to_load: dict | None = None

    def _device(self) -> torch.device:
        trainer = getattr(self, 'trainer', None)
        return trainer.strategy.root_device if trainer is not None else torch.device('cpu')

    def _distributed(self) -> bool:
        return torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1

    def _loader(self, path: str, pipelines: dict, train: bool) -> Loader:
        return Loader(path, batch_size=self.batch_size, num_workers=self.num_workers, os_cache=self.os_cache,
                      order=self.train_order if train else OrderOption.SEQUENTIAL, drop_last=train,
                      distributed=self._distributed(), seed=self.seed, batches_ahead=self.batches_ahead,
                      pipelines=pipelines)

    def setup(self, stage: str | None = None) -> None:
        """Make the loaders (once: Lightning may call ``setup`` for several stages)."""
        device = self._device()
        if stage in ('fit', None) and self.train_loader is None:
            self.train_loader = self._loader(self.train_path, self.train_pipelines(device), train=True)
            if self._state_to_load is not None:
                self.train_loader.load_state_dict(self._state_to_load)
                self._state_to_load = None
        if stage in ('fit', 'validate', None) and self.val_path and self.val_loader is None:
            self.val_loader = self._loader(self.val_path, self.val_pipelines(device), train=False)

    def train_dataloader(self) -> LazyEpochs:
        return LazyEpochs(self.train_loader)

    def val_dataloader(self) -> LazyEpochs | list:
        return LazyEpochs(self.val_loader) if self.val_loader is not None else []

    def teardown(self, stage: str | None = None) -> None:
        """Stop the worker threads of an epoch left running (e.g. after ``max_steps``)."""
        for loader in (self.train_loader, self.val_loader):
            if loader is not None:
                loader.close()

    def state_dict(self) -> dict[str, Any]:
        """The train loader's position, saved by Lightning in every checkpoint."""
        if self.train_loader is not None:
            return {'train_loader': self.train_loader.state_dict()}
        return {'train_loader': self._state_to_load} if self._state_to_load is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from a checkpoint's position: now if the loader exists, else once ``setup``
        has made it."""
        state = state_dict.get('train_loader')
        if state is None:
            return
        if self.train_loader is not None:
            self.train_loader.load_state_dict(state)
        else:
            self._state_to_load = state
