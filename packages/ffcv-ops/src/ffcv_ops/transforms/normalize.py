"""Per-channel normalisation of image batches, on CPU (compiled) or GPU (torch)."""
import threading
from dataclasses import replace

import numpy as np

from ..allocation_query import AllocationQuery
from ..kernels.augment import normalize_rows
from ..operation import Operation

_SENTINEL = object()


def _check_values(name, values, check):
    """A ValueError naming the entries of ``values`` that fail ``check``: ``'finite'``,
    ``'nonzero'`` or ``'nonnegative'``."""
    if check == 'finite':
        bad, what, why = (~np.isfinite(values), "a value that is not finite",
                          "that channel would come out NaN, infinite or all zeros")
    elif check == 'nonzero':
        bad, what, why = values == 0, "a zero", "dividing by it gives infinities"
    else:
        bad, what, why = values < 0, "a negative value", ("it would flip the sign of that channel; "
                                                          "give its absolute value")
    if np.any(bad):
        entries = ', '.join(f"{name}[{i}] = {float(values[i])!r}" for i in np.flatnonzero(bad))
        raise ValueError(f"NormalizeImage: {name} has {what} ({entries}): {why}")


class NormalizeImage(Operation):
    """``(image - mean) / std`` per channel, as ``type`` (e.g. ``np.float16``, ``np.float32``).

    On numpy batches (before ToTensor: ``(height, width, channels)`` uint8) it runs as a
    compiled kernel on the worker threads. On torch tensors (after ``ToTorchImage``, on CPU
    or on the GPU after ``ToDevice``) it runs as torch operations on the whole batch.

    ``mean`` and ``std`` have one value per channel. Every value must be finite and every
    ``std`` positive, or the constructor raises a ``ValueError`` naming the value: a NaN or
    an infinity would make that channel of every batch NaN, infinite or zero, and a zero
    ``std`` divides by zero. A negative ``std`` is an error too: it would flip the sign of
    its channel, which no normalisation means (give its absolute value).

    >>> NormalizeImage(np.array([124, 116, 104]), np.array([58, 57, 57]), np.float16)
    NormalizeImage(mean=[124.0, 116.0, 104.0], std=[58.0, 57.0, 57.0], type=float16)
    """

    def __init__(self, mean, std, type=_SENTINEL, *, dtype=_SENTINEL):
        super().__init__()
        if type is not _SENTINEL and dtype is not _SENTINEL:
            raise TypeError("give NormalizeImage the output type once (type= or dtype=)")
        out = dtype if type is _SENTINEL else type
        self.type = np.dtype(np.float32 if out is _SENTINEL else out)
        if self.type.kind != 'f':
            raise ValueError(f"NormalizeImage outputs floating point data, got type {self.type}")
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"mean has {self.mean.size} values and std {self.std.size}")
        _check_values('mean', self.mean, 'finite')
        _check_values('std', self.std, 'finite')
        _check_values('std', self.std, 'nonzero')
        _check_values('std', self.std, 'nonnegative')

    def declare_state_and_memory(self, previous_state):
        self._jit = previous_state.jit_mode
        shape = previous_state.shape
        if shape is None or len(shape) != 3:
            raise ValueError(f"NormalizeImage works on image batches, got data of shape {shape}")
        channels = shape[-1] if self._jit else shape[0]
        if channels != self.mean.size:
            raise ValueError(f"NormalizeImage has {self.mean.size} means, the images have {channels} channels")
        if self._jit:
            self.is_parallel, self.compiled = True, False
            return (replace(previous_state, dtype=self.type), AllocationQuery(shape, self.type))
        import torch
        torch_type = torch.from_numpy(np.zeros(0, self.type)).dtype
        self.is_parallel, self.compiled = False, False
        return (replace(previous_state, dtype=torch_type),
                AllocationQuery(shape, torch_type, previous_state.device))

    def generate_code(self):
        scale = (1.0 / self.std).astype(np.float32)
        offset = (-self.mean / self.std).astype(np.float32)
        if self._jit:
            out_type = self.type

            compute_type = out_type if out_type in (np.float32, np.float64) else np.dtype(np.float32)
            rows = {}  # width -> the constants repeated along an image row
            scratches = threading.local()

            def normalize(images, destination, indices=None, seed=0):
                n, height, width, channels = images.shape
                out = destination[:n]
                if width not in rows:
                    rows[width] = (np.tile(scale, width).astype(compute_type),
                                   np.tile(offset, width).astype(compute_type))
                scale_row, offset_row = rows[width]
                source = np.ascontiguousarray(images).reshape(n * height, width * channels)
                if out.dtype == compute_type and out.flags.c_contiguous:
                    normalize_rows(source, scale_row, offset_row, out.reshape(n * height, width * channels))
                else:   # float16 (numba has no CPU float16): through a float32 scratch, kept per thread
                    size = n * height * width * channels
                    scratch = getattr(scratches, 'array', None)
                    if scratch is None or scratch.size < size:
                        scratch = scratches.array = np.empty(size, compute_type)
                    scratch = scratch[:size].reshape(n * height, width * channels)
                    normalize_rows(source, scale_row, offset_row, scratch)
                    out[...] = scratch.reshape(out.shape)
                return out

            return normalize

        import torch
        cache = {}

        def normalize_torch(images, destination, indices=None, seed=0):
            key = (images.device, destination.dtype)
            if key not in cache:
                shape = (1, -1, 1, 1)
                cache[key] = (torch.tensor(scale, device=images.device).view(shape),
                              torch.tensor(offset, device=images.device).view(shape))
            s, o = cache[key]
            out = destination[:images.shape[0]]
            if out.dtype == torch.float32:
                torch.addcmul(o, images.to(torch.float32), s, out=out)
            else:
                out.copy_(torch.addcmul(o, images.to(torch.float32), s))
            return out

        return normalize_torch

    def __repr__(self):
        return (f"NormalizeImage(mean={self.mean.tolist()}, std={self.std.tolist()}, "
                f"type={self.type})")
