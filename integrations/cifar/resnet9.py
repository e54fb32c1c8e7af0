"""ResNet-9: the small residual network of the fast CIFAR-10 DAWNBench entries.

Four stages of 3x3 convolutions (each followed by batch norm and ReLU), max-pooling between
them, two residual blocks, a global max-pool and a linear classifier whose output is
scaled down (which keeps early logits small and training stable at large learning rates).

>>> model = ResNet9(num_classes=10, width=64)
>>> model(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 10])
"""
import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (no bias: batch norm follows), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """``x + block(x)``."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResNet9(nn.Module):
    """ResNet-9 with ``width`` channels in its first layer (64 in the DAWNBench network;
    the later stages have 2, 4 and 8 times as many)."""

    def __init__(self, num_classes: int = 10, width: int = 64, logit_scale: float = 0.125):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_bn_relu(3, w),
            conv_bn_relu(w, 2 * w), nn.MaxPool2d(2),
            Residual(nn.Sequential(conv_bn_relu(2 * w, 2 * w), conv_bn_relu(2 * w, 2 * w))),
            conv_bn_relu(2 * w, 4 * w), nn.MaxPool2d(2),
            conv_bn_relu(4 * w, 8 * w), nn.MaxPool2d(2),
            Residual(nn.Sequential(conv_bn_relu(8 * w, 8 * w), conv_bn_relu(8 * w, 8 * w))),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(8 * w, num_classes, bias=False)
        self.logit_scale = logit_scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images)) * self.logit_scale
