"""The CIFAR-10 recipe trains on a small generated dataset: the loss goes down."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import train_cifar  # noqa: E402
from ffcv.fields import IntField, RGBImageField  # noqa: E402
from ffcv_format.testing import photo_like_image, write_dataset  # noqa: E402

CLASSES = 4


def learnable_images(path, n, seed):
    """32x32 photo-like images whose class shows in their colour (one channel brightened or
    darkened per class), so that a few steps of training can learn something."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        label = i % CLASSES
        image = photo_like_image(rng, 32, 32).astype(np.int16)
        image[..., label % 3] += 70 if label < 3 else -70
        samples.append((np.clip(image, 0, 255).astype(np.uint8), label))
    write_dataset(str(path), {'image': RGBImageField(write_mode='raw'), 'label': IntField()}, samples)
    return str(path)


@pytest.mark.slow
def test_cifar_recipe_learns_on_generated_data(tmp_path):
    config = train_cifar.load_config(overrides={
        'train_dataset': learnable_images(tmp_path / 'train.beton', 384, seed=0),
        'val_dataset': learnable_images(tmp_path / 'test.beton', 100, seed=1),
        'num_workers': 2, 'device': 'cpu', 'width': 8, 'epochs': 4, 'batch_size': 64,
        'lr': 0.2, 'lr_peak_epoch': 1, 'cutout_size': 8})
    history = train_cifar.train(config)
    losses = history['train_loss']
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses
    assert history['val_loss'][-1] < history['val_loss'][0], history['val_loss']
    assert history['val_accuracy'][-1] > 1 / CLASSES, history['val_accuracy']
    assert history['lr'][-1] == pytest.approx(0.0, abs=1e-9)   # the one cycle ends at 0


def test_one_cycle_rises_to_its_peak_and_falls_to_zero():
    factors = [train_cifar.one_cycle(step, 10, 4, peak_epoch=1) for step in range(41)]
    assert factors[0] == 0 and factors[10] == 1 and factors[40] == 0
    assert all(a < b for a, b in zip(factors[:10], factors[1:11]))
    assert all(a > b for a, b in zip(factors[10:40], factors[11:41]))


def test_unknown_config_key_is_refused():
    with pytest.raises(KeyError, match='unknown config key'):
        train_cifar.load_config(overrides=['epoch=3'])
