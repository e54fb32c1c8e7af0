"""CUDA paths: pinned host slots, copies on side streams, normalisation on the GPU.

Skipped without a CUDA device; the same pipelines' CPU paths are checked in the other tests
(and the CPU half of each comparison here runs everywhere).
"""
import numpy as np
import pytest
import torch
from ffcv_loader import Loader, OrderOption
from ffcv_loader.testing import images_file
from ffcv_ops import (NormalizeImage, RandomHorizontalFlip, RandomResizedCropRGBImageDecoder, ToDevice,
                      ToTensor, ToTorchImage)

MEAN = np.array([124.0, 116.0, 104.0])
STD = np.array([58.0, 57.0, 57.0])
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def pipelines(device):
    return {'image': [RandomResizedCropRGBImageDecoder((32, 32)), RandomHorizontalFlip(), ToTensor(),
                      ToTorchImage(), ToDevice(device), NormalizeImage(MEAN, STD, np.float32)]}


def batches(path, device, **kw):
    loader = Loader(path, batch_size=24, num_workers=2, order=OrderOption.RANDOM, seed=3, drop_last=False,
                    pipelines=pipelines(device), **kw)
    return [(im.cpu().clone(), lab.numpy().copy()) for im, lab in loader], loader


def test_normalized_batches_on_cpu_match_a_numpy_reference(tmp_path):
    path, _ = images_file(str(tmp_path / 'im.beton'), 50)
    got, _ = batches(path, 'cpu')
    raw = Loader(path, batch_size=24, num_workers=1, order=OrderOption.RANDOM, seed=3, drop_last=False,
                 pipelines={'image': [RandomResizedCropRGBImageDecoder((32, 32)), RandomHorizontalFlip()]})
    for (normalized, _), (images, _) in zip(got, raw):
        expected = (images.astype(np.float32) - MEAN.astype(np.float32)) / STD.astype(np.float32)
        assert np.allclose(normalized.permute(0, 2, 3, 1).numpy(), expected, atol=1e-4)


@pytest.mark.gpu
@needs_cuda
def test_cuda_batches_equal_cpu_batches(tmp_path):
    path, _ = images_file(str(tmp_path / 'im.beton'), 200)
    cpu, _ = batches(path, 'cpu')
    gpu, loader = batches(path, 'cuda:0', batches_ahead=2)
    assert loader._cuda is not None                       # pinned slots and side streams in use
    assert len(cpu) == len(gpu)
    for (a, la), (b, lb) in zip(cpu, gpu):
        assert np.array_equal(la, lb)
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.gpu
@needs_cuda
def test_cuda_batches_survive_a_slow_consumer(tmp_path):
    """The consumer's stream is busy when the next batch's copy is issued: the batch it
    holds must not be overwritten, and each batch must be complete when handed over."""
    path, _ = images_file(str(tmp_path / 'im.beton'), 200)
    reference, _ = batches(path, 'cpu')
    loader = Loader(path, batch_size=24, num_workers=2, order=OrderOption.RANDOM, seed=3, drop_last=False,
                    batches_ahead=1, pipelines=pipelines('cuda:0'))
    big = torch.randn(4096, 4096, device='cuda:0')
    for (expected, _), (image, _) in zip(reference, loader):
        for _ in range(3):
            big = big @ big / 4096                         # keep the consumer's stream busy
        assert torch.allclose(image.cpu(), expected, atol=1e-4)
