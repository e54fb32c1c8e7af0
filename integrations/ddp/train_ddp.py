"""Data-parallel training over torch.distributed ranks, each reading its shard of every
epoch from one .beton file, and resuming mid-epoch from its checkpoint (see README.md).

    torchrun --standalone --nproc_per_node N train_ddp.py --config config.yaml [--set KEY=VALUE ...]

Started again with the same arguments after a stop (preemption, a crash, Ctrl-C), it
continues from the last checkpoint: the same model, optimizer and position in the epoch,
so that every sample is trained on once per epoch.
"""
import argparse
import json
import os
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from ffcv.fields.decoders import CenterCropRGBImageDecoder, IntDecoder, RandomResizedCropRGBImageDecoder
from ffcv.loader import Loader, OrderOption
from ffcv.reader import Reader
from ffcv.transforms import NormalizeImage, RandomHorizontalFlip, Squeeze, ToDevice, ToTensor, ToTorchImage
from torch import nn

from small_convnet import SmallConvNet
from training_checkpoint import load_checkpoint, save_checkpoint

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


def make_loader(config: Mapping[str, Any], path: str, device: torch.device, train: bool, rank: int,
                world_size: int) -> Loader:
    """Training: this rank's share of a random order (``distributed=True``), random resized
    crops and flips. Validation: every ``world_size``-th sample from ``rank`` on, centre crops.
    Fields other than the image, the label and ``record_field`` are not read."""
    size = int(config['image_size'])
    fields = Reader(path).field_names
    decoder = (RandomResizedCropRGBImageDecoder((size, size)) if train
               else CenterCropRGBImageDecoder((size, size), ratio=1.0))
    image_ops = [decoder, *([RandomHorizontalFlip()] if train else []), ToTensor(), ToDevice(device),
                 ToTorchImage(), NormalizeImage(MEAN, STD, np.float32)]
    pipelines = {name: None for name in fields}
    pipelines[config['image_field']] = image_ops
    pipelines[config['label_field']] = [IntDecoder(), ToTensor(), ToDevice(device), Squeeze()]
    if train and config['record_field']:
        pipelines[config['record_field']] = [IntDecoder(), ToTensor(), Squeeze()]
    common = dict(batch_size=int(config['batch_size']), num_workers=int(config['num_workers']),
                  seed=int(config['seed']), pipelines=pipelines)
    if train:
        return Loader(path, order=OrderOption.RANDOM, distributed=world_size > 1, drop_last=True, **common)
    return Loader(path, order=OrderOption.SEQUENTIAL, drop_last=False,
                  indices=np.arange(rank, Reader(path).num_samples, world_size), **common)


def _setup(device_name: str) -> tuple[int, int, torch.device]:
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    cuda = torch.cuda.is_available() if device_name == 'auto' else device_name.startswith('cuda')
    if device_name == 'auto':
        device = torch.device(f'cuda:{local_rank}' if cuda else 'cpu')
    else:
        device = torch.device(device_name)
    if cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group('nccl' if cuda else 'gloo')
    return (dist.get_rank() if dist.is_initialized() else 0), world_size, device


def _all_reduce(values: list[float], device: torch.device) -> list[float]:
    totals = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(totals)
    return totals.tolist()


def evaluate(model: nn.Module, loader: Loader, device: torch.device) -> dict:
    """Mean loss and accuracy over every validation sample (summed over ranks)."""
    model.eval()
    loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images)
            loss += nn.functional.cross_entropy(logits, labels, reduction='sum').item()
            correct += (logits.argmax(1) == labels).sum().item()
            count += len(labels)
    loss, correct, count = _all_reduce([loss, correct, count], device)
    return {'val_loss': loss / max(count, 1), 'val_accuracy': correct / max(count, 1)}


def train(config: Mapping[str, Any]) -> dict:
    """Train (or continue training from ``config['checkpoint']``); return what this run did:
    ``train_loss`` per epoch it trained in (this rank's mean), ``val_loss``/``val_accuracy``
    per epoch when there is a validation set, ``steps`` (the step reached), ``stopped``."""
    rank, world_size, device = _setup(config['device'])
    torch.manual_seed(int(config['seed']))
    loader = make_loader(config, config['dataset'], device, True, rank, world_size)
    outputs = loader.output_names
    image_at, label_at = outputs.index(config['image_field']), outputs.index(config['label_field'])
    record_at = outputs.index(config['record_field']) if config['record_field'] else None
    val_loader = (make_loader(config, config['val_dataset'], device, False, rank, world_size)
                  if config['val_dataset'] else None)

    model = SmallConvNet(int(config['num_classes']), int(config['width'])).to(device)
    if world_size > 1:
        device_ids = [device.index] if device.type == 'cuda' else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    optimizer = torch.optim.SGD(model.parameters(), lr=float(config['lr']),
                                momentum=float(config['momentum']), nesterov=True,
                                weight_decay=float(config['weight_decay']))
    criterion = nn.CrossEntropyLoss(label_smoothing=float(config['label_smoothing']))
    step, checkpoint = 0, config['checkpoint']
    if checkpoint and os.path.exists(checkpoint):
        step = load_checkpoint(checkpoint, model, optimizer, loader, device)['step']
    with ExitStack() as stack:
        record = None
        if record_at is not None and config['record_dir']:
            Path(config['record_dir']).mkdir(parents=True, exist_ok=True)
            record = stack.enter_context(open(Path(config['record_dir']) / f'rank{rank}.jsonl', 'a'))
        return _train_epochs(config, model, optimizer, criterion, loader, val_loader, device, rank,
                             world_size, step, (image_at, label_at, record_at), record)


def _train_epochs(config, model, optimizer, criterion, loader, val_loader, device, rank, world_size, step,
                  positions, record) -> dict:
    """The epochs of :func:`train`, from where the loader stands (after a resume: mid-epoch)."""
    image_at, label_at, record_at = positions
    epochs, steps_per_epoch = int(config['epochs']), len(loader)
    total_steps = epochs * steps_per_epoch
    start_epoch = loader.state_dict()['epoch']
    checkpoint = config['checkpoint']

    def checkpoint_now():
        if checkpoint and rank == 0:
            save_checkpoint(checkpoint, model, optimizer, loader, step)
        if world_size > 1:
            dist.barrier()   # no rank goes on (or stops) before the checkpoint is written

    result = {'train_loss': [], 'val_loss': [], 'val_accuracy': [], 'steps': step, 'stopped': False}
    stop_after = config['stop_after_steps']
    for epoch in range(start_epoch, epochs):
        model.train()
        losses = []
        for batch_index, batch in enumerate(loader, start=loader.state_dict()['batch']):
            images, labels = batch[image_at], batch[label_at]
            for group in optimizer.param_groups:   # linear warm-up over one epoch, then linear decay to 0
                group['lr'] = float(config['lr']) * float(np.interp(step, [0, steps_per_epoch, total_steps],
                                                                    [0.1, 1.0, 0.0]))
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.item())
            if record is not None:
                record.write(json.dumps({'epoch': epoch, 'batch': batch_index,
                                         'values': batch[record_at].tolist()}) + '\n')
                record.flush()
            if stop_after is not None and step >= int(stop_after):
                checkpoint_now()
                result.update(steps=step, stopped=True)
                result['train_loss'].append(float(np.mean(losses)))
                return result
            if checkpoint and int(config['checkpoint_every']) and step % int(config['checkpoint_every']) == 0:
                checkpoint_now()
        result['train_loss'].append(float(np.mean(losses)) if losses else float('nan'))
        if val_loader is not None:
            for key, value in evaluate(model, val_loader, device).items():
                result[key].append(value)
        checkpoint_now()
        if rank == 0:
            print(json.dumps({'epoch': epoch, 'step': step, **{k: v[-1] for k, v in result.items()
                                                               if isinstance(v, list) and v}}), flush=True)
    result['steps'] = step
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=str(DEFAULT_CONFIG),
                        help='YAML config (default: config.yaml here)')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key (repeatable)')
    parser.add_argument('--result', help='write this rank\'s result as JSON to RESULT.rank<R>.json')
    args = parser.parse_args(argv)
    try:
        result = train(load_config(args.config, args.overrides))
        if args.result:
            rank = dist.get_rank() if dist.is_initialized() else 0
            Path(f'{args.result}.rank{rank}.json').write_text(json.dumps(result))
        if dist.is_initialized():
            dist.barrier()   # every rank is done before any of them tears the group down
        return result
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == '__main__':
    main()
