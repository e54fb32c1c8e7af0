"""Train ResNet-9 on CIFAR-10 from .beton files with the fast recipe (see README.md).

    python train_cifar.py --config config.yaml [--set KEY=VALUE ...]

Prints one JSON line per epoch (train loss, test loss and accuracy, learning rate, time)
and a final line with the test accuracy.
"""
import argparse
import json
import time
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from cifar_loaders import make_loader
from resnet9 import ResNet9

DEFAULT_CONFIG = Path(__file__).with_name('config.yaml')


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: Iterable[str] | Mapping[str, Any] = ()) -> dict:
    """The YAML config at ``path`` with ``overrides`` applied: ``KEY=VALUE`` strings (the value
    read as YAML, so ``epochs=3`` is a number) or a mapping. An unknown key is an error."""
    config = yaml.safe_load(Path(path).read_text())
    if isinstance(overrides, Mapping):
        pairs = list(overrides.items())
    else:
        pairs = []
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


def pick_device(name: str) -> torch.device:
    """``'auto'``: the first CUDA device if there is one, else the CPU."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (None: full precision). ``'auto'`` is float16 on
    CUDA and full precision on the CPU (where bfloat16 is slower on most processors)."""
    if precision == 'auto':
        precision = 'fp16' if device.type == 'cuda' else 'fp32'
    return {'fp16': torch.float16, 'bf16': torch.bfloat16, 'fp32': None}[precision]


def one_cycle(step: int, steps_per_epoch: int, epochs: int, peak_epoch: float) -> float:
    """The learning-rate factor at ``step``: linear from 0 to 1 at ``peak_epoch`` (at most
    ``epochs``), then to 0 at the end of the last epoch."""
    return float(np.interp(step / steps_per_epoch, [0, min(peak_epoch, epochs), epochs], [0, 1, 0]))


def evaluate(model: nn.Module, loader, flip_tta: bool, amp_dtype: torch.dtype | None,
             device: torch.device) -> dict:
    """Mean cross-entropy and accuracy over ``loader``; with ``flip_tta`` the logits of each
    image and of its mirror image are averaged."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            with _autocast(device, amp_dtype):
                logits = model(images)
                if flip_tta:
                    logits = (logits + model(torch.flip(images, dims=[3]))) / 2
            total_loss += nn.functional.cross_entropy(logits.float(), labels, reduction='sum').item()
            correct += (logits.argmax(1) == labels).sum().item()
            count += len(labels)
    return {'loss': total_loss / max(count, 1), 'accuracy': correct / max(count, 1)}


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def train(config: Mapping[str, Any]) -> dict:
    """Train as ``config`` says; return the history: per epoch ``train_loss`` (mean over the
    epoch's batches), ``val_loss``, ``val_accuracy``, ``lr`` (at the epoch's end) and
    ``seconds``."""
    torch.manual_seed(int(config['seed']))
    device = pick_device(config['device'])
    amp_dtype = autocast_dtype(config['precision'], device)
    train_loader = make_loader(config, config['train_dataset'], device, train=True)
    val_loader = make_loader(config, config['val_dataset'], device, train=False)

    model = ResNet9(num_classes=10, width=int(config['width'])).to(device)
    if config['channels_last']:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=float(config['lr']),
                                momentum=float(config['momentum']), nesterov=True,
                                weight_decay=float(config['weight_decay']))
    epochs, steps_per_epoch = int(config['epochs']), len(train_loader)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: one_cycle(step, steps_per_epoch, epochs, float(config['lr_peak_epoch'])))
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    criterion = nn.CrossEntropyLoss(label_smoothing=float(config['label_smoothing']))

    history = {'train_loss': [], 'val_loss': [], 'val_accuracy': [], 'lr': [], 'seconds': []}
    for epoch in range(epochs):
        start, losses = time.perf_counter(), []
        model.train()
        for images, labels in train_loader:
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, amp_dtype):
                loss = criterion(model(images), labels)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            losses.append(loss.item())
        result = evaluate(model, val_loader, bool(config['flip_tta']), amp_dtype, device)
        history['train_loss'].append(float(np.mean(losses)))
        history['val_loss'].append(result['loss'])
        history['val_accuracy'].append(result['accuracy'])
        history['lr'].append(schedule.get_last_lr()[0])
        history['seconds'].append(time.perf_counter() - start)
        print(json.dumps({'epoch': epoch, **{k: v[-1] for k, v in history.items()}}), flush=True)
    return history


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=str(DEFAULT_CONFIG),
                        help='YAML config (default: config.yaml here)')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key (repeatable)')
    args = parser.parse_args(argv)
    history = train(load_config(args.config, args.overrides))
    print(json.dumps({'final_val_accuracy': history['val_accuracy'][-1]}), flush=True)
    return history


if __name__ == '__main__':
    main()
