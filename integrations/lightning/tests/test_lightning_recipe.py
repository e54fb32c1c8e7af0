"""The Lightning recipe with two real processes (DDP over gloo, started by Lightning): a run
stopped mid-epoch and resumed from its Lightning checkpoint trains on every sample exactly
once per epoch."""
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

pytest.importorskip('lightning')

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


def run_recipe(tmp_path, name, **overrides):
    """train_lightning.py on WORLD processes (Lightning starts the second); each rank's result."""
    command = [sys.executable, str(RECIPE / 'train_lightning.py'), '--result', str(tmp_path / name)]
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
def test_lightning_resume_mid_epoch_trains_every_sample_once_per_epoch(tmp_path):
    common = dict(train_dataset=dataset(tmp_path / 'train.beton', N, 0),
                  val_dataset=dataset(tmp_path / 'val.beton', 32, 1), num_classes=CLASSES, image_size=24,
                  num_workers=1, width=8, batch_size=BATCH, lr=0.05, accelerator='cpu', devices=WORLD,
                  strategy='ddp', max_epochs=EPOCHS, progress_bar=False, record_field='index')

    stopped = run_recipe(tmp_path, 'stopped', max_steps=STOP_AT, checkpoint_every_n_steps=STOP_AT,
                         checkpoint_dir=str(tmp_path / 'ckpt'),
                         record_dir=str(tmp_path / 'resumed'), **common)
    assert [r['global_step'] for r in stopped] == [STOP_AT] * WORLD
    checkpoint = tmp_path / 'ckpt' / f'epoch=1-step={STOP_AT}.ckpt'
    assert checkpoint.exists(), sorted(os.listdir(tmp_path / 'ckpt'))
    # the DataModule's state in the checkpoint: epoch 1, its first 2 batches handed out
    position = torch.load(checkpoint, weights_only=False)['FFCVDataModule']['train_loader']
    assert (position['epoch'], position['batch']) == (1, STOP_AT - STEPS_PER_EPOCH)
    resumed = run_recipe(tmp_path, 'resumed', resume_from=str(checkpoint), checkpoint_every_n_steps=1000,
                         checkpoint_dir=str(tmp_path / 'ckpt'),
                         record_dir=str(tmp_path / 'resumed'), **common)
    assert [r['global_step'] for r in resumed] == [EPOCHS * STEPS_PER_EPOCH] * WORLD

    seen = records(tmp_path / 'resumed')
    assert len(seen) == WORLD * EPOCHS * STEPS_PER_EPOCH
    for epoch in range(EPOCHS):
        indices = [i for (rank, e, batch), values in seen.items() if e == epoch for i in values]
        assert len(indices) == N and sorted(indices) == list(range(N)), f"epoch {epoch}"

    # it learns: epoch 0 (the first run) against epoch 2 (the resumed run)
    first, last = stopped[0]['train_loss'][0], resumed[0]['train_loss'][-1]
    assert last < 0.9 * first, (first, last)
    assert len(stopped[0]['val_loss']) == 1 and len(resumed[0]['val_loss']) == 2   # one validation per epoch
    assert resumed[0]['val_loss'][-1] < stopped[0]['val_loss'][0], \
        (stopped[0]['val_loss'], resumed[0]['val_loss'])
