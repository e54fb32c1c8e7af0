"""Train an image classifier with Lightning, its batches from ffcv (FFCVDataModule).

    python train_lightning.py --config config.yaml [--set KEY=VALUE ...]

With ``devices > 1`` Lightning starts one process per device and trains with DDP; each
process reads its shard of every epoch. Checkpoints are written every
``checkpoint_every_n_steps`` steps; ``--set resume_from=PATH`` continues from one, mid-epoch
included, with exactly the batches the interrupted epoch had not given yet.
"""
import argparse
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from ffcv.fields.decoders import CenterCropRGBImageDecoder, IntDecoder, RandomResizedCropRGBImageDecoder
from ffcv.reader import Reader
from ffcv.transforms import NormalizeImage, RandomHorizontalFlip, Squeeze, ToDevice, ToTensor, ToTorchImage
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from ffcv_datamodule import FFCVDataModule

DEFAULT_CONFIG = Path(__file__).with_name('config.yaml')
MEAN, STD = np.array([127.5] * 3), np.array([64.0] * 3)


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: Iterable[str] | Mapping[str, Any] = ()) -> dict:
    """The YAML config at ``path`` with ``overrides`` (``KEY=VALUE`` strings, the value read
    as YAML, or a mapping) applied. An unknown key is an error."""
    config = yaml.safe_load(Path(path).read_text())
    pairs = list(overrides.items()) if isinstance(overrides, Mapping) else []
    if not isinstance(overrides, Mapping):
        for item in overrides:
            if '=' not in item:
                raise ValueError(f"override {item!r} is not KEY=VALUE")
            key, value = item.split('=', 1)
            pairs.append((key.strip(), yaml.safe_load(value)))
    for key, value in pairs:
        if key not in config:
            raise KeyError(f"unknown config key {key!r}; the keys are: {', '.join(config)}")
        config[key] = value
    return config


def pipelines_for(config: Mapping[str, Any], path: str, train: bool):
    """The DataModule's pipelines factory for ``path``: the image (random resized crops and
    flips when ``train``, centre crops otherwise), the label and, when training with a
    ``record_field``, that field; other fields are not read."""
    size = int(config['image_size'])

    def pipelines(device: torch.device) -> dict:
        decoder = (RandomResizedCropRGBImageDecoder((size, size)) if train
                   else CenterCropRGBImageDecoder((size, size), ratio=1.0))
        result = {name: None for name in Reader(path).field_names}
        result[config['image_field']] = [decoder, *([RandomHorizontalFlip()] if train else []), ToTensor(),
                                         ToDevice(device), ToTorchImage(),
                                         NormalizeImage(MEAN, STD, np.float32)]
        result[config['label_field']] = [IntDecoder(), ToTensor(), ToDevice(device), Squeeze()]
        if train and config['record_field']:
            result[config['record_field']] = [IntDecoder(), ToTensor(), Squeeze()]
        return result

    return pipelines


class ImageClassifier(L.LightningModule):
    """A small convolutional network trained with SGD and label smoothing. Batches are the
    loader's outputs in file order: (image, label) or (image, label, recorded field)."""

    def __init__(self, num_classes: int, width: int, lr: float, momentum: float, weight_decay: float,
                 label_smoothing: float, record_path: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.network = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.record_path = record_path
        self.history = {'train_loss': [], 'val_loss': [], 'val_accuracy': []}
        self._train_losses, self._val_sums = [], torch.zeros(3, dtype=torch.float64)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch[0], batch[1]
        loss = self.criterion(self(images), labels)
        self._train_losses.append(loss.item())
        if self.record_path is not None and len(batch) > 2:
            with open(self.record_path, 'a') as f:
                f.write(json.dumps({'epoch': self.current_epoch, 'batch': batch_idx,
                                    'values': batch[2].tolist()}) + '\n')
        return loss

    def on_train_epoch_end(self) -> None:
        self.history['train_loss'].append(float(np.mean(self._train_losses)) if self._train_losses else None)
        self._train_losses = []

    def validation_step(self, batch, batch_idx: int) -> None:
        images, labels = batch[0], batch[1]
        logits = self(images)
        self._val_sums += torch.tensor([nn.functional.cross_entropy(logits, labels, reduction='sum').item(),
                                        (logits.argmax(1) == labels).sum().item(), len(labels)],
                                       dtype=torch.float64)

    def on_validation_epoch_end(self) -> None:
        sums = self.trainer.strategy.reduce(self._val_sums.to(self.device), reduce_op='sum').cpu()
        self._val_sums = torch.zeros(3, dtype=torch.float64)
        if self.trainer.sanity_checking:
            return
        loss, correct, count = sums.tolist()
        self.history['val_loss'].append(loss / max(count, 1))
        self.history['val_accuracy'].append(correct / max(count, 1))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=self.hparams.momentum,
                               nesterov=True, weight_decay=self.hparams.weight_decay)


def build(config: Mapping[str, Any]) -> tuple[L.Trainer, ImageClassifier, FFCVDataModule]:
    """The trainer, the model and the data module ``config`` describes."""
    L.seed_everything(int(config['seed']), verbose=False)
    datamodule = FFCVDataModule(
        config['train_dataset'], config['val_dataset'], batch_size=int(config['batch_size']),
        train_pipelines=pipelines_for(config, config['train_dataset'], train=True),
        val_pipelines=(pipelines_for(config, config['val_dataset'], train=False)
                       if config['val_dataset'] else None),
        num_workers=int(config['num_workers']), seed=int(config['seed']))
    trainer = L.Trainer(
        accelerator=config['accelerator'], devices=config['devices'], strategy=config['strategy'],
        max_epochs=int(config['max_epochs']), max_steps=int(config['max_steps']),
        precision=config['precision'],
        callbacks=[ModelCheckpoint(dirpath=config['checkpoint_dir'], filename='{epoch}-{step}',
                                   every_n_train_steps=int(config['checkpoint_every_n_steps']),
                                   save_top_k=-1)],
        logger=False, enable_progress_bar=bool(config['progress_bar']), enable_model_summary=False,
        num_sanity_val_steps=0)
    record_path = None
    if config['record_field'] and config['record_dir']:
        Path(config['record_dir']).mkdir(parents=True, exist_ok=True)
        record_path = str(Path(config['record_dir']) / f'rank{trainer.global_rank}.jsonl')
    model = ImageClassifier(int(config['num_classes']), int(config['width']), float(config['lr']),
                            float(config['momentum']), float(config['weight_decay']),
                            float(config['label_smoothing']), record_path)
    return trainer, model, datamodule


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=str(DEFAULT_CONFIG),
                        help='YAML config (default: config.yaml here)')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key (repeatable)')
    parser.add_argument('--result', help="write each rank's history as JSON to RESULT.rank<R>.json")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)
    trainer, model, datamodule = build(config)
    trainer.fit(model, datamodule=datamodule, ckpt_path=config['resume_from'])
    result = {**model.history, 'global_step': trainer.global_step}
    if args.result:
        Path(f'{args.result}.rank{trainer.global_rank}.json').write_text(json.dumps(result))
    return result


if __name__ == '__main__':
    main()
