"""The DDP recipe with two real processes (torchrun, gloo): stopped mid-epoch, resumed from
its checkpoint, it trains on every sample exactly once per epoch and ends where an
uninterrupted run ends."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ffcv.fields import IntField, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset

RECIPE = Path(__file__).resolve().parents[1]
N, WORLD, BATCH, EPOCHS, CLASSES = 96, 2, 8, 3, 4
STEPS_PER_EPOCH = N // WORLD // BATCH   # 6
STOP_AT = 8                             # epoch 1, after its second batch


def dataset(path, n, seed):
    """Images whose class (i % CLASSES) shows in their colour; 'index' is the sample's index."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        label = i % CLASSES
        image = photo_like_image(rng, 28, 28).astype(np.int16)
        image[..., label % 3] += 70 if label < 3 else -70
        samples.append((np.clip(image, 0, 255).astype(np.uint8), label, i))
    fields = {'image': RGBImageField(write_mode='raw'), 'label': IntField(), 'index': IntField()}
    write_dataset(str(path), fields, samples)
    return str(path)


def torchrun(tmp_path, name, **overrides):
    """Run the recipe on WORLD processes; return each rank's result."""
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={WORLD}',
               str(RECIPE / 'train_ddp.py'), '--result', str(tmp_path / name)]
    for key, value in overrides.items():
        command += ['--set', f'{key}={json.dumps(value)}']
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert run.returncode == 0, run.stdout + run.stderr
    return [json.loads((tmp_path / f'{name}.rank{r}.json').read_text()) for r in range(WORLD)]


def records(folder):
    """{(rank, epoch, batch): [sample indices]} as the ranks recorded them."""
    seen = {}
    for rank in range(WORLD):
        for line in (folder / f'rank{rank}.jsonl').read_text().splitlines():
            entry = json.loads(line)
            key = (rank, entry['epoch'], entry['batch'])
            assert key not in seen, f"batch {key} trained twice"
            seen[key] = entry['values']
    return seen


@pytest.mark.slow
def test_ddp_stop_and_resume_mid_epoch_trains_every_sample_once_per_epoch(tmp_path):
    common = dict(dataset=dataset(tmp_path / 'train.beton', N, 0),
                  val_dataset=dataset(tmp_path / 'val.beton', 30, 1),
                  num_classes=CLASSES, image_size=24, num_workers=1, width=8, epochs=EPOCHS, batch_size=BATCH,
                  lr=0.1, checkpoint_every=1000, record_field='index')

    stopped = torchrun(tmp_path, 'stopped', checkpoint=str(tmp_path / 'resumed.pt'), stop_after_steps=STOP_AT,
                       record_dir=str(tmp_path / 'resumed'), **common)
    assert all(r['stopped'] and r['steps'] == STOP_AT for r in stopped)
    resumed = torchrun(tmp_path, 'resumed', checkpoint=str(tmp_path / 'resumed.pt'),
                       record_dir=str(tmp_path / 'resumed'), **common)
    assert all(not r['stopped'] and r['steps'] == EPOCHS * STEPS_PER_EPOCH for r in resumed)
    # the resumed run trained on the rest of epoch 1 and on epoch 2 only
    assert all(len(r['train_loss']) == 2 for r in resumed)

    seen = records(tmp_path / 'resumed')
    assert len(seen) == WORLD * EPOCHS * STEPS_PER_EPOCH
    for epoch in range(EPOCHS):
        indices = [i for (rank, e, batch), values in seen.items() if e == epoch for i in values]
        assert len(indices) == N and sorted(indices) == list(range(N)), f"epoch {epoch}"

    straight = torchrun(tmp_path, 'straight', checkpoint=str(tmp_path / 'straight.pt'),
                        record_dir=str(tmp_path / 'straight'), **common)
    # the same batches, in the same order, as an uninterrupted run ...
    assert records(tmp_path / 'straight') == seen
    # ... and so the same model at the end, and the same validation result
    resumed_model = torch.load(tmp_path / 'resumed.pt', weights_only=True)['model']
    straight_model = torch.load(tmp_path / 'straight.pt', weights_only=True)['model']
    for name, tensor in straight_model.items():
        assert torch.allclose(resumed_model[name].float(), tensor.float(), atol=1e-6), name
    assert resumed[0]['val_loss'][-1] == pytest.approx(straight[0]['val_loss'][-1], rel=1e-5)

    losses = straight[0]['train_loss']
    assert len(losses) == EPOCHS and losses[-1] < 0.9 * losses[0], losses
    assert straight[0]['val_loss'][-1] < straight[0]['val_loss'][0], straight[0]['val_loss']
