"""BlurPool: a fixed low-pass filter in front of a strided convolution, so that downsampling
does not alias (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019)."""
import torch
from torch import nn


class BlurPool2d(nn.Module):
    """A 3x3 binomial blur ([1, 2, 1] outer [1, 2, 1], normalised), per channel, stride 1,
    reflecting at the borders; the strided convolution after it does the subsampling.

    >>> BlurPool2d(64)(torch.ones(1, 64, 8, 8)).allclose(torch.ones(1, 64, 8, 8))
    True
    """

    def __init__(self, channels: int):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps)
        kernel = kernel / kernel.sum()
        self.channels = channels
        # a buffer, not a parameter: the filter is fixed (and it is saved with the model)
        self.register_buffer('kernel', kernel.expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = nn.functional.pad(x, (1, 1, 1, 1), mode='reflect')
        return nn.functional.conv2d(padded, self.kernel.to(x.dtype), groups=self.channels)
