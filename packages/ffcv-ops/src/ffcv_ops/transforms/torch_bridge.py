"""From numpy batches to torch tensors, and moving them to a device. torch is imported
only when one of these operations is used."""
from dataclasses import replace

import numpy as np

from ..allocation_query import AllocationQuery
from ..operation import Operation


def _torch():
    import torch
    return torch


def _torch_dtype(dtype):
    torch = _torch()
    if isinstance(dtype, torch.dtype):
        return dtype
    return torch.from_numpy(np.zeros(0, dtype=np.dtype(dtype))).dtype


class ToTensor(Operation):
    """numpy batch -> torch tensor sharing its memory (no copy)."""

    compiled = False
    is_parallel = False

    def declare_state_and_memory(self, previous_state):
        if not previous_state.jit_mode:
            raise ValueError("ToTensor got data that is already a torch tensor")
        return replace(previous_state, jit_mode=False, dtype=_torch_dtype(previous_state.dtype)), None

    def generate_code(self):
        from_numpy = _torch().from_numpy

        def to_tensor(batch, destination, indices=None, seed=0):
            return from_numpy(batch)

        return to_tensor


class ToTorchImage(Operation):
    """``(batch, height, width, channels)`` tensor -> ``(batch, channels, height, width)``.

    With ``channels_last=True`` (the default) the result is a view in torch's channels-last
    memory format (no copy); with ``False`` it is copied into a contiguous NCHW buffer.
    Samples of several views (a multi-view decoder's ``(views, height, width, channels)``)
    become ``(batch, views, channels, height, width)``.
    ``convert_back_int16`` is accepted for FFCV 1.0 compatibility and has no effect.
    """

    compiled = False
    is_parallel = False

    def __init__(self, channels_last=True, convert_back_int16=True):
        super().__init__()
        self.channels_last = bool(channels_last)

    def declare_state_and_memory(self, previous_state):
        if previous_state.jit_mode:
            raise ValueError("ToTorchImage needs a torch tensor: put ToTensor() before it")
        shape = previous_state.shape
        if shape is None or len(shape) not in (3, 4):
            raise ValueError(f"ToTorchImage expects images (height, width, channels) or views of them "
                             f"(views, height, width, channels), got shape {shape}")
        *views, h, w, c = shape
        new_state = replace(previous_state, shape=(*views, c, h, w))
        if self.channels_last:
            return new_state, None
        return new_state, AllocationQuery((*views, c, h, w), previous_state.dtype, previous_state.device)

    def generate_code(self):
        channels_last = self.channels_last

        def to_torch_image(batch, destination, indices=None, seed=0):
            if batch.dim() == 5:    # (batch, views, height, width, channels)
                nchw = batch.permute(0, 1, 4, 2, 3)
            else:
                nchw = batch.permute(0, 3, 1, 2)
            if channels_last:
                return nchw
            out = destination[:batch.shape[0]]
            out.copy_(nchw)
            return out

        return to_torch_image

    def __repr__(self):
        return f"ToTorchImage(channels_last={self.channels_last})"


class DeviceUnavailableError(RuntimeError):
    """A pipeline names a device this machine does not have (``ToDevice('cuda')`` without CUDA)."""


def check_device_available(device, what: str) -> None:
    """Raise :class:`DeviceUnavailableError` naming ``what`` when ``device`` (a ``torch.device``)
    is a CUDA device this process cannot use: no CUDA build or no GPU, or an index past the
    last GPU. torch's own message at the first copy names neither the operation nor CUDA."""
    if device.type != 'cuda':
        return
    torch = _torch()
    if not torch.cuda.is_available():
        build = 'a CPU-only build of torch' if torch.version.cuda is None else 'no CUDA device is visible'
        raise DeviceUnavailableError(
            f"{what}: CUDA is not available on this machine ({build}, torch {torch.__version__}); "
            f"use ToDevice('cpu') or leave ToDevice out, e.g. "
            f"device = 'cuda' if torch.cuda.is_available() else 'cpu'")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise DeviceUnavailableError(
            f"{what}: there is no CUDA device {device.index}; this machine has {count} "
            f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")


class ToDevice(Operation):
    """Copy the batch to ``device`` (e.g. ``'cuda:0'``) into a preallocated tensor.

    With ``non_blocking=True`` the copy is asynchronous; the loader reads host batches from
    pinned memory and copies them on a side stream, and the consumer's stream waits for the
    copy when it receives the batch. To the CPU the batch is handed on as it is.
    """

    compiled = False
    is_parallel = False

    def __init__(self, device, non_blocking=True):
        super().__init__()
        self.device = _torch().device(device)
        self.non_blocking = bool(non_blocking)

    def declare_state_and_memory(self, previous_state):
        if previous_state.jit_mode:
            raise ValueError("ToDevice needs a torch tensor: put ToTensor() before it")
        check_device_available(self.device, f"ToDevice({str(self.device)!r})")
        new_state = replace(previous_state, device=self.device)
        if self.device.type == 'cpu':
            return new_state, None
        return new_state, AllocationQuery(previous_state.shape, previous_state.dtype, self.device)

    def generate_code(self):
        device, non_blocking = self.device, self.non_blocking

        def to_device(batch, destination, indices=None, seed=0):
            if device.type == 'cpu':
                return batch.cpu()
            n = batch.shape[0]
            if batch.dim() == 4 and not batch.is_contiguous() and \
                    batch.is_contiguous(memory_format=_torch().channels_last):
                # keep the channels-last layout: the copy stays one contiguous block
                _, c, h, w = batch.shape
                out = destination.reshape(-1)[:n * c * h * w].view(n, h, w, c).permute(0, 3, 1, 2)
            else:
                out = destination[:n]
            out.copy_(batch, non_blocking=non_blocking)
            return out

        return to_device

    def __repr__(self):
        return f"ToDevice({str(self.device)!r}, non_blocking={self.non_blocking})"


class Convert(Operation):
    """Change the element type: the values of ``tensor.to(dtype)`` or ``array.astype(dtype)``,
    written into a buffer of the pipeline (when the shape is known) rather than a new
    array per batch."""

    compiled = False
    is_parallel = False

    def __init__(self, target_dtype):
        super().__init__()
        self.target_dtype = target_dtype

    def declare_state_and_memory(self, previous_state):
        if previous_state.jit_mode:
            dtype = np.dtype(self.target_dtype)
        else:
            dtype = _torch_dtype(self.target_dtype)
        state = replace(previous_state, dtype=dtype)
        if previous_state.shape is None:
            return state, None
        return state, AllocationQuery(tuple(previous_state.shape), dtype,
                                      None if previous_state.jit_mode else previous_state.device)

    def generate_code(self):
        target = self.target_dtype

        def convert(batch, destination, indices=None, seed=0):
            if isinstance(batch, np.ndarray):
                if destination is None or destination.shape[1:] != batch.shape[1:]:
                    return batch.astype(target)
                out = destination[:batch.shape[0]]
                np.copyto(out, batch, casting='unsafe')
                return out
            if (destination is None or tuple(destination.shape[1:]) != tuple(batch.shape[1:])
                    or destination.device != batch.device):
                return batch.to(_torch_dtype(target))
            out = destination[:batch.shape[0]]
            out.copy_(batch)
            return out

        return convert

    def __repr__(self):
        return f"Convert({self.target_dtype!r})"


class View(Operation):
    """Reinterpret the bytes as another element type of the same size (no copy)."""

    compiled = False
    is_parallel = False

    def __init__(self, target_dtype):
        super().__init__()
        self.target_dtype = target_dtype

    def declare_state_and_memory(self, previous_state):
        if previous_state.jit_mode:
            new = np.dtype(self.target_dtype)
            if new.itemsize != np.dtype(previous_state.dtype).itemsize:
                raise ValueError(f"View cannot reinterpret {previous_state.dtype} as {new}: sizes differ")
            return replace(previous_state, dtype=new), None
        torch = _torch()
        old, new = _torch_dtype(previous_state.dtype), _torch_dtype(self.target_dtype)
        if torch.empty(0, dtype=old).element_size() != torch.empty(0, dtype=new).element_size():
            # torch would reinterpret the last dimension, not what the state declares
            raise ValueError(f"View cannot reinterpret {old} as {new}: sizes differ")
        return replace(previous_state, dtype=new), None

    def generate_code(self):
        target = self.target_dtype

        def view(batch, destination, indices=None, seed=0):
            if isinstance(batch, np.ndarray):
                return batch.view(np.dtype(target))
            return batch.view(_torch_dtype(target))

        return view

    def __repr__(self):
        return f"View({self.target_dtype!r})"


class Squeeze(Operation):
    """Remove size-1 dimensions of the batch tensor (``dims``, counted with the batch
    dimension as 0), or, given none, every size-1 dimension except the batch's: a
    ``(batch, 1)`` label batch becomes ``(batch,)`` whatever the batch size."""

    compiled = False
    is_parallel = False

    def __init__(self, *dims):
        super().__init__()
        self.dims = tuple(int(d) for d in dims)
        if 0 in self.dims:
            raise ValueError("Squeeze cannot remove the batch dimension (0)")

    def declare_state_and_memory(self, previous_state):
        shape = previous_state.shape or ()
        if self.dims:
            for d in self.dims:
                if not 1 <= d <= len(shape) or shape[d - 1] != 1:
                    raise ValueError(f"Squeeze({d}): dimension {d} of a batch of {shape} samples is not 1")
            keep = tuple(s for i, s in enumerate(shape) if i + 1 not in self.dims)
        else:
            keep = tuple(s for s in shape if s != 1)
        self._shape = keep
        return replace(previous_state, shape=keep), None

    def generate_code(self):
        op = self

        def squeeze(batch, destination, indices=None, seed=0):
            return batch.reshape((batch.shape[0],) + op._shape)

        return squeeze

    def __repr__(self):
        return f"Squeeze{self.dims}"
