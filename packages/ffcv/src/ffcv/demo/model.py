"""The demo's network: a small convolutional classifier that trains in seconds on a CPU."""
import torch
from torch import nn


def conv_block(inputs: int, outputs: int) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs),
                         nn.ReLU(inplace=True))


class DigitNet(nn.Module):
    """Convolution blocks each followed by 2x2 max pooling until the image is at most 4x4
    pixels (so that the last block sees the whole digit), then global average pooling and
    a linear layer to ``classes`` scores. The blocks have ``width``, 2x, then 4x channels.

    Takes the loader's ``N x 3 x H x W`` uint8 batches as they are (scales them itself).

    >>> DigitNet(image_size=32)(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, image_size: int = 32, width: int = 16, classes: int = 10):
        super().__init__()
        layers, channels, side = [], 3, image_size
        while True:
            outputs = width * min(4, 2 ** (len(layers) // 2))
            layers.append(conv_block(channels, outputs))
            channels = outputs
            if side <= 4:
                break
            layers.append(nn.MaxPool2d(2))
            side //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().mul_(1 / 255).sub_(0.5)
        return self.classifier(self.features(x).mean(dim=(2, 3)))
