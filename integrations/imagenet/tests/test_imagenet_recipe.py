"""The ImageNet recipe on a small generated image folder: conversion, progressive resizing
between epochs, and a loss that goes down."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import train_imagenet  # noqa: E402
import write_imagenet  # noqa: E402
from blurpool import BlurPool2d  # noqa: E402
from ffcv_format import Reader  # noqa: E402
from ffcv_format.testing import photo_like_image  # noqa: E402
from resnet import resnet  # noqa: E402

CLASSES = ['n000_red', 'n001_green', 'n002_blue', 'n003_dark']


def image_folder(root, per_class, seed):
    """ROOT/<class>/<i>.jpg: photo-like images of assorted sizes whose class shows in their colour."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            h, w = int(rng.integers(48, 80)), int(rng.integers(48, 80))
            image = photo_like_image(rng, h, w).astype(np.int16)
            image[..., label % 3] += 70 if label < 3 else -70
            rgb = np.clip(image, 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f'{i:03d}.jpg'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return root


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('imagenet')
    paths = {}
    for split, per_class, seed in (('train', 48, 0), ('val', 12, 1)):
        root = image_folder(tmp / split, per_class, seed)
        paths[split] = str(tmp / f'{split}.beton')
        write_imagenet.write_imagenet(root, paths[split], max_resolution=64, workers=2, progress=False)
    return paths


def test_converter_writes_every_image_with_its_class_label(converted):
    reader = Reader(converted['train'])
    assert reader.num_samples == 48 * len(CLASSES)
    labels = [reader[i][1] for i in range(reader.num_samples)]
    assert sorted(labels) == sorted(list(range(len(CLASSES))) * 48)
    heights, widths = reader.metadata['image']['height'], reader.metadata['image']['width']
    assert max(heights.max(), widths.max()) <= 64


@pytest.mark.slow
def test_imagenet_recipe_resizes_between_epochs_and_learns(converted):
    config = train_imagenet.load_config(preset='rn18_16', overrides={
        'train_dataset': converted['train'], 'val_dataset': converted['val'], 'num_workers': 2,
        'device': 'cpu', 'width': 8, 'num_classes': len(CLASSES), 'epochs': 3, 'batch_size': 32,
        'lr_per_256': 2.0, 'lr_warmup_epochs': 0.5, 'min_res': 32, 'max_res': 48, 'res_step': 8,
        'ramp_start': 0.0, 'ramp_end': 0.5, 'val_res': 40, 'val_batch_size': 24})
    history = train_imagenet.train(config)
    assert history['resolution'] == [32, 40, 48]
    # the loader gave batches of the new size at each epoch (the same decoder, changed in place)
    assert history['batch_shape'] == [(32, 3, 32, 32), (32, 3, 40, 40), (32, 3, 48, 48)]
    losses = history['train_loss']
    assert all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0], losses
    assert history['val_loss'][-1] < history['val_loss'][0], history['val_loss']
    assert history['top5'][-1] == 1.0   # 4 classes: the top 5 always holds the answer


def test_presets_cover_resnet18_and_50_from_16_to_88_epochs():
    for arch, short in (('resnet18', 'rn18'), ('resnet50', 'rn50')):
        for epochs in (16, 24, 32, 40, 56, 88):
            config = train_imagenet.load_config(preset=f'{short}_{epochs}')
            assert (config['arch'], config['epochs']) == (arch, epochs)
    with pytest.raises(KeyError, match='unknown preset'):
        train_imagenet.load_config(preset='rn34_16')


def test_batch_norm_and_biases_get_no_weight_decay():
    model = resnet('resnet50', num_classes=10, width=8, blur=True)
    decayed, not_decayed = train_imagenet.parameter_groups(model, 1e-4)
    norms = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    assert norms and norms <= {id(p) for p in not_decayed['params']}
    assert not norms & {id(p) for p in decayed['params']}
    assert {id(p) for p in decayed['params']} | {id(p) for p in not_decayed['params']} == \
        {id(p) for p in model.parameters()}
    assert decayed['weight_decay'] == 1e-4 and not_decayed['weight_decay'] == 0


def test_resnets_and_blurpool_shapes():
    images = torch.randn(2, 3, 48, 48)
    for arch in ('resnet18', 'resnet50'):
        model = resnet(arch, num_classes=7, width=8, blur=True).eval()
        assert model(images).shape == (2, 7)
    blurs = [m for m in resnet('resnet18', 7, width=8, blur=True).modules() if isinstance(m, BlurPool2d)]
    assert len(blurs) == 3   # one before the strided 3x3 convolution of stages 2, 3 and 4
    constant = torch.full((1, 4, 6, 6), 3.0)
    assert torch.allclose(BlurPool2d(4)(constant), constant)   # a blur keeps flat regions as they are
