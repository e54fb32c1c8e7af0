"""The torch bridge on a CUDA device (skipped without one)."""
import numpy as np
import pytest
import torch

from ffcv_ops import (IntDecoder, NormalizeImage, SimpleRGBImageDecoder, Squeeze, ToDevice, ToTensor,
                      ToTorchImage)
from ffcv_ops.testing import run_pipeline

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')]

MEAN, STD = np.array([124.0, 116.5, 104.0]), np.array([58.4, 57.1, 57.4])


@pytest.mark.parametrize('channels_last', [True, False])
def test_to_device_then_normalize_on_the_gpu(small_images_file, channels_last):
    indices = np.arange(100)
    originals = np.stack([small_images_file.read_field(i, 'image') for i in indices])
    ops = [SimpleRGBImageDecoder(), ToTensor(), ToTorchImage(channels_last), ToDevice('cuda:0'),
           NormalizeImage(MEAN, STD, np.float16)]
    out = run_pipeline(small_images_file, 'image', ops, indices)
    torch.cuda.synchronize()
    assert out.device.type == 'cuda' and out.dtype == torch.float16 and out.shape == (100, 3, 16, 20)
    expected = ((originals.astype(np.float64) - MEAN) / STD).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out.double().cpu().numpy(), expected, rtol=2e-3, atol=2e-3)


def test_to_device_keeps_channels_last(small_images_file):
    ops = [SimpleRGBImageDecoder(), ToTensor(), ToTorchImage(), ToDevice('cuda', non_blocking=False)]
    out = run_pipeline(small_images_file, 'image', ops, np.arange(30))
    assert out.device.type == 'cuda' and out.is_contiguous(memory_format=torch.channels_last)
    expected = torch.from_numpy(np.stack([small_images_file.read_field(i, 'image') for i in range(30)]))
    assert torch.equal(out.cpu(), expected.permute(0, 3, 1, 2))


def test_labels_to_device(small_images_file):
    out = run_pipeline(small_images_file, 'label', [IntDecoder(), ToTensor(), ToDevice('cuda'), Squeeze()],
                       np.arange(7, 19), batch_size=32)
    assert out.device.type == 'cuda' and out.tolist() == list(range(7, 19))
