"""ResNet-18 and ResNet-50 (He et al., 2016), written out plainly, with an optional
anti-aliasing blur before every strided convolution (BlurPool, Zhang 2019).

>>> model = resnet('resnet50', num_classes=1000)               # the standard network
>>> tiny = resnet('resnet18', num_classes=4, width=8)          # the same shape, 8x narrower
"""
import torch
from torch import nn

from blurpool import BlurPool2d


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int, blur: bool) -> nn.Module:
    """A convolution without bias (batch norm follows); strided ones get a blur first when ``blur``."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                     bias=False)
    if blur and stride > 1 and kernel_size > 1:
        return nn.Sequential(BlurPool2d(in_channels), conv)
    return conv


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int, blur: bool):
        super().__init__()
        out_channels = channels * self.expansion
        self.body = nn.Sequential(
            _conv(in_channels, channels, 3, stride, blur), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            _conv(channels, out_channels, 3, 1, blur), nn.BatchNorm2d(out_channels))
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided here, as in torchvision's "ResNet v1.5"), 1x1 expand, and a
    shortcut (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int, blur: bool):
        super().__init__()
        out_channels = channels * self.expansion
        self.body = nn.Sequential(
            _conv(in_channels, channels, 1, 1, blur), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            _conv(channels, channels, 3, stride, blur), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            _conv(channels, out_channels, 1, 1, blur), nn.BatchNorm2d(out_channels))
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class ResNet(nn.Module):
    """A stem (7x7 stride-2 convolution, 3x3 max-pool), four stages of ``blocks`` residual
    blocks with ``width``, 2, 4 and 8 times ``width`` channels (times the block's expansion),
    global average pooling and a linear classifier.

    The last batch norm of each residual branch starts at zero, so that every block starts as
    the identity (Goyal et al., 2017): this helps the large learning rates of short schedules.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], blocks: tuple[int, ...], num_classes: int,
                 width: int = 64, blur: bool = False):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1))
        stages, in_channels = [], width
        for i, count in enumerate(blocks):
            channels = width * 2 ** i
            layers = []
            for j in range(count):
                layers.append(block(in_channels, channels, 2 if (j == 0 and i > 0) else 1, blur))
                in_channels = channels * block.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
        for module in self.modules():
            if isinstance(module, (BasicBlock, Bottleneck)):
                nn.init.zeros_(module.body[-1].weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(images))), 1))


ARCHITECTURES = {
    'resnet18': (BasicBlock, (2, 2, 2, 2)),
    'resnet50': (Bottleneck, (3, 4, 6, 3)),
}


def resnet(arch: str, num_classes: int, width: int = 64, blur: bool = False) -> ResNet:
    """``'resnet18'`` or ``'resnet50'``; ``width`` is the stem's channels (64 in the paper)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    block, blocks = ARCHITECTURES[arch]
    return ResNet(block, blocks, num_classes, width=width, blur=blur)
