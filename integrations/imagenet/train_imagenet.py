"""Train ResNet-18/50 on ImageNet from .beton files (see README.md).

    python train_imagenet.py --preset rn18_16 --set train_dataset=... --set val_dataset=...
    torchrun --nproc_per_node 8 train_imagenet.py --preset rn50_88 --set ...

Under ``torchrun`` each process trains a DistributedDataParallel replica on its shard of
every epoch (NCCL on GPUs, gloo on CPUs). Rank 0 prints one JSON line per epoch.
"""
import argparse
import json
import os
import time
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn

from imagenet_loaders import train_loader, val_loader
from imagenet_schedules import learning_rate, train_resolution
from resnet import resnet

DEFAULT_CONFIG = Path(__file__).with_name('imagenet.yaml')


def load_config(path: str | Path = DEFAULT_CONFIG, preset: str | None = None,
                overrides: Iterable[str] | Mapping[str, Any] = ()) -> dict:
    """``defaults`` of the YAML file at ``path``, then the ``preset`` (a name under
    ``presets``), then ``overrides`` (``KEY=VALUE`` strings, the value read as YAML, or a
    mapping). Unknown presets and keys are errors."""
    document = yaml.safe_load(Path(path).read_text())
    config, presets = dict(document['defaults']), document.get('presets', {})
    changes = []
    if preset is not None:
        if preset not in presets:
            raise KeyError(f"unknown preset {preset!r}; the presets are: {', '.join(presets)}")
        changes += list(presets[preset].items())
    if isinstance(overrides, Mapping):
        changes += list(overrides.items())
    else:
        for item in overrides:
            if '=' not in item:
                raise ValueError(f"override {item!r} is not KEY=VALUE")
            key, value = item.split('=', 1)
            changes.append((key.strip(), yaml.safe_load(value)))
    for key, value in changes:
        if key not in config:
            raise KeyError(f"unknown config key {key!r}; the keys are: {', '.join(config)}")
        config[key] = value
    return config


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: convolution and linear weights with ``weight_decay``; batch-norm
    parameters and biases (one-dimensional parameters) without."""
    decayed, not_decayed = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (not_decayed if parameter.ndim <= 1 else decayed).append(parameter)
    return [{'params': decayed, 'weight_decay': weight_decay}, {'params': not_decayed, 'weight_decay': 0.0}]


def _autocast(device: torch.device, precision: str):
    if precision == 'auto':
        precision = 'fp16' if device.type == 'cuda' else 'fp32'
    dtype = {'fp16': torch.float16, 'bf16': torch.bfloat16, 'fp32': None}[precision]
    return (lambda: torch.autocast(device.type, dtype=dtype)) if dtype is not None else nullcontext, dtype


def _distributed_setup(device_name: str) -> tuple[int, int, torch.device]:
    """Join the process group when started by torchrun (WORLD_SIZE set); return (rank,
    world size, this process's device)."""
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
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, world_size, device


def evaluate(model: nn.Module, loader, flip_tta: bool, autocast, distributed: bool) -> dict:
    """Top-1 and top-5 accuracy and mean loss over every validation image (summed over
    ranks); with ``flip_tta`` the logits of each image and of its mirror image are averaged."""
    model.eval()
    device = next(model.parameters()).device
    totals = torch.zeros(4, dtype=torch.float64, device=device)   # loss, top-1, top-5, count
    with torch.no_grad():
        for images, labels in loader:
            with autocast():
                logits = model(images)
                if flip_tta:
                    logits = (logits + model(torch.flip(images, dims=[3]))) / 2
            logits = logits.float()
            top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
            totals += torch.tensor([nn.functional.cross_entropy(logits, labels, reduction='sum').item(),
                                    (top5[:, 0] == labels).sum().item(),
                                    (top5 == labels[:, None]).any(1).sum().item(), len(labels)],
                                   dtype=torch.float64, device=device)
    if distributed:
        dist.all_reduce(totals)
    loss, top1, top5, count = totals.tolist()
    count = max(count, 1)
    return {'val_loss': loss / count, 'top1': top1 / count, 'top5': top5 / count}


def train(config: Mapping[str, Any]) -> dict:
    """Train as ``config`` says; return the history (per epoch): ``resolution``,
    ``batch_shape`` (of the epoch's first batch), ``train_loss`` (mean over this rank's
    batches), ``val_loss``, ``top1``, ``top5``, ``lr`` and ``seconds``."""
    rank, world_size, device = _distributed_setup(config['device'])
    distributed = world_size > 1
    torch.manual_seed(int(config['seed']))
    autocast, amp_dtype = _autocast(device, config['precision'])
    epochs = int(config['epochs'])
    resolution_of = lambda epoch: train_resolution(  # noqa: E731
        epoch, epochs, int(config['min_res']), int(config['max_res']), int(config['res_step']),
        float(config['ramp_start']), float(config['ramp_end']))
    image_dtype = np.float16 if amp_dtype == torch.float16 else np.float32
    train_batches, decoder = train_loader(config, device, resolution_of(0), distributed, image_dtype)
    val_batches = val_loader(config, device, rank, world_size, image_dtype)

    model = resnet(config['arch'], int(config['num_classes']), width=int(config['width']),
                   blur=bool(config['blurpool'])).to(device)
    memory_format = torch.channels_last if config['channels_last'] else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    if distributed:
        device_ids = [device.index] if device.type == 'cuda' else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    peak = float(config['lr_per_256']) * int(config['batch_size']) * world_size / 256
    optimizer = torch.optim.SGD(parameter_groups(model, float(config['weight_decay'])), lr=peak,
                                momentum=float(config['momentum']))
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    criterion = nn.CrossEntropyLoss(label_smoothing=float(config['label_smoothing']))
    steps_per_epoch = len(train_batches)

    history = {key: [] for key in ('resolution', 'batch_shape', 'train_loss', 'val_loss', 'top1', 'top5',
                                   'lr', 'seconds')}
    step = 0
    for epoch in range(epochs):
        start = time.perf_counter()
        resolution = resolution_of(epoch)
        decoder.output_size = (resolution, resolution)   # takes effect at the next iter()
        model.train()
        losses, batch_shape = [], None
        for images, labels in train_batches:
            if batch_shape is None:
                batch_shape = tuple(images.shape)
            lr = learning_rate(step, steps_per_epoch, epochs, peak, float(config['lr_warmup_epochs']),
                               float(config['lr_warmup_start']), float(config['lr_end']))
            for group in optimizer.param_groups:
                group['lr'] = lr
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = criterion(model(images), labels)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.detach())
            step += 1
        result = evaluate(model, val_batches, bool(config['flip_tta']), autocast, distributed)
        history['resolution'].append(resolution)
        history['batch_shape'].append(batch_shape)
        history['train_loss'].append(float(torch.stack(losses).float().mean()) if losses else float('nan'))
        for key in ('val_loss', 'top1', 'top5'):
            history[key].append(result[key])
        history['lr'].append(lr if losses else float('nan'))
        history['seconds'].append(time.perf_counter() - start)
        if rank == 0:
            print(json.dumps({'epoch': epoch, **{k: v[-1] for k, v in history.items()}}), flush=True)
    return history


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=str(DEFAULT_CONFIG),
                        help='YAML config (default: imagenet.yaml here)')
    parser.add_argument('--preset', help='a preset of the config, e.g. rn18_16 or rn50_88')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key after the preset (repeatable)')
    args = parser.parse_args(argv)
    try:
        history = train(load_config(args.config, args.preset, args.overrides))
        if dist.is_initialized():
            dist.barrier()   # every rank is done before any of them tears the group down
        return history
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == '__main__':
    main()
