"""A small convolutional classifier: the model of the DDP recipe (any image size)."""
import torch
from torch import nn


class SmallConvNet(nn.Module):
    """Three convolution + batch norm + ReLU stages (``width``, 2 and 4 times ``width``
    channels, the first two followed by 2x2 max-pooling), global average pooling, a linear
    classifier.

    >>> SmallConvNet(num_classes=10, width=16)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()

        def stage(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True)]

        self.features = nn.Sequential(*stage(3, width), nn.MaxPool2d(2),
                                      *stage(width, 2 * width), nn.MaxPool2d(2),
                                      *stage(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))
