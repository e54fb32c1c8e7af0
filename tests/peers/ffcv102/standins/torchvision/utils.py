"""``make_grid`` and ``save_image`` for image batches in [0, 1]."""
import math

import numpy as np
import torch
from PIL import Image


def make_grid(tensor, nrow=8, padding=2, pad_value=0.0):
    if tensor.dim() == 3:
        tensor = tensor[None]
    n, c, h, w = tensor.shape
    if c == 1:
        tensor = tensor.expand(n, 3, h, w)
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = torch.full((3, rows * (h + padding) + padding, cols * (w + padding) + padding), float(pad_value),
                      dtype=torch.float32)
    for k in range(n):
        r, q = divmod(k, cols)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[:, top:top + h, left:left + w] = tensor[k, :3].float()
    return grid


def save_image(tensor, fp, nrow=8, padding=2, **kwargs):
    grid = make_grid(tensor, nrow=nrow, padding=padding) if tensor.dim() == 4 else tensor.float()
    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(np.ascontiguousarray(array)).save(fp)
