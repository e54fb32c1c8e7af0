"""Checkpoints that resume training exactly: model, optimizer, step and the loader's
position (``Loader.state_dict()``), written atomically by rank 0."""
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, loader,
                    step: int) -> None:
    """Write the checkpoint to ``path`` through a temporary file renamed over it, so that a
    process killed while writing leaves the previous checkpoint intact. Call it on one rank:
    the loader's position (epoch, batches handed out) is the same on every rank."""
    path = Path(path)
    module = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    state = {'model': module.state_dict(), 'optimizer': optimizer.state_dict(), 'loader': loader.state_dict(),
             'step': int(step)}
    temporary = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    with open(temporary, 'wb') as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, loader,
                    device: torch.device) -> dict[str, Any]:
    """Restore model, optimizer and loader from ``path``; return the checkpoint (its
    ``step`` and ``loader`` state say where training continues)."""
    state = torch.load(path, map_location=device, weights_only=True)
    module = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    module.load_state_dict(state['model'])
    optimizer.load_state_dict(state['optimizer'])
    loader.load_state_dict(state['loader'])
    return state
