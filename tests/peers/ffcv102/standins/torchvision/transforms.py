"""Image transforms as ``torch.nn.Module`` objects on ``(N, C, H, W)`` (or ``(C, H, W)``) tensors.

Each does what the torchvision transform of the same name does, simply: uint8 in, uint8
out (float in, float out), random parameters drawn from torch's global generator.
"""
import math

import torch
import torch.nn.functional as F


def _as_float(images):
    return images.float() if not images.is_floating_point() else images


def _like(result, images):
    if images.is_floating_point():
        return result.to(images.dtype)
    return result.round().clamp(0, 255).to(images.dtype)


def _pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)


class Grayscale(torch.nn.Module):
    def __init__(self, num_output_channels=1):
        super().__init__()
        self.num_output_channels = num_output_channels

    def forward(self, images):
        x = _as_float(images)
        gray = 0.299 * x[..., 0:1, :, :] + 0.587 * x[..., 1:2, :, :] + 0.114 * x[..., 2:3, :, :]
        return _like(gray.expand(*gray.shape[:-3], self.num_output_channels, *gray.shape[-2:]).contiguous(),
                     images)


class CenterCrop(torch.nn.Module):
    def __init__(self, size):
        super().__init__()
        self.size = _pair(size)

    def forward(self, images):
        h, w = images.shape[-2:]
        th, tw = self.size
        top, left = (h - th) // 2, (w - tw) // 2
        return images[..., top:top + th, left:left + tw]


class Pad(torch.nn.Module):
    def __init__(self, padding, fill=0, padding_mode='constant'):
        super().__init__()
        self.padding, self.fill = padding, fill

    def forward(self, images):
        p = self.padding
        pads = (p, p, p, p) if isinstance(p, int) else (p[0], p[0], p[1], p[1]) if len(p) == 2 else tuple(p)
        return F.pad(images, pads, value=self.fill)


class RandomCrop(torch.nn.Module):
    def __init__(self, size, padding=None):
        super().__init__()
        self.size, self.padding = _pair(size), padding

    def forward(self, images):
        if self.padding:
            images = Pad(self.padding)(images)
        h, w = images.shape[-2:]
        th, tw = self.size
        top = int(torch.randint(0, h - th + 1, ()))
        left = int(torch.randint(0, w - tw + 1, ()))
        return images[..., top:top + th, left:left + tw]


class RandomAffine(torch.nn.Module):
    """A rotation by an angle drawn from ``[-degrees, degrees]`` (the other options unused)."""

    def __init__(self, degrees, translate=None, scale=None, shear=None, fill=0):
        super().__init__()
        self.degrees = (-degrees, degrees) if isinstance(degrees, (int, float)) else tuple(degrees)

    def forward(self, images):
        batched = images.dim() == 4
        x = _as_float(images if batched else images[None])
        angle = math.radians(float(torch.empty(()).uniform_(*self.degrees)))
        theta = torch.tensor([[math.cos(angle), -math.sin(angle), 0.0],
                              [math.sin(angle), math.cos(angle), 0.0]], dtype=x.dtype)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, align_corners=False)
        out = _like(out, images)
        return out if batched else out[0]


class ColorJitter(torch.nn.Module):
    """Brightness, contrast and saturation factors drawn from ``[1 - v, 1 + v]``; hue ignored."""

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        super().__init__()
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    @staticmethod
    def _factor(value):
        return float(torch.empty(()).uniform_(max(0.0, 1 - value), 1 + value)) if value else 1.0

    def forward(self, images):
        x = _as_float(images)
        top = 1.0 if images.is_floating_point() else 255.0
        x = (x * self._factor(self.brightness)).clamp(0, top)
        gray = 0.299 * x[..., 0:1, :, :] + 0.587 * x[..., 1:2, :, :] + 0.114 * x[..., 2:3, :, :]
        c = self._factor(self.contrast)
        x = (c * x + (1 - c) * gray.mean(dim=(-3, -2, -1), keepdim=True)).clamp(0, top)
        s = self._factor(self.saturation)
        x = (s * x + (1 - s) * gray).clamp(0, top)
        return _like(x, images)


class Normalize(torch.nn.Module):
    """``(x - mean) / std`` per channel of ``(N, C, H, W)`` float batches."""

    def __init__(self, mean, std, inplace=False):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, images):
        shape = (-1, 1, 1)
        mean = torch.as_tensor(self.mean, dtype=images.dtype, device=images.device).view(shape)
        std = torch.as_tensor(self.std, dtype=images.dtype, device=images.device).view(shape)
        return (images - mean) / std
