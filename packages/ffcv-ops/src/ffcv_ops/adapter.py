"""FFCV 1.0 compatibility of pipelines, settled once when a pipeline is built.

Operations written for FFCV 1.0 run unchanged. They differ from this package's own
operations in ways that are all known when a pipeline is built, so this module settles
them then, and the per-chunk loop (:meth:`ffcv_ops.Pipeline.run_chunk`) calls every step
the same way, with no branch per call::

    decoder:    decode(indices, destination, metadata, storage_state, seed)
    transform:  code(inputs, destination, indices, seed)

Code already in that form (this package's operations, and plugins written for it) is
called as it is; anything else gets one thin wrapper, made here. What is recognised:

- the decoder: a ``Decoder``, an operation with ``is_decoder = True``, or (FFCV 1.0
  decoders subclass plain ``Operation``) an operation whose class name ends in
  ``Decoder``. A pipeline without one starts with the field's default decoder; an empty
  pipeline is FFCV 1.0's default pipeline, the default decoder then ``ToTensor()``.
- a ``torch.nn.Module`` in a pipeline: wrapped in ``ModuleWrapper``, as FFCV 1.0 does.
- call signatures: code taking ``(inputs, destination)``, ``(inputs, *args)``,
  ``(inputs, destination, indices)`` (or marked with FFCV 1.0's ``with_indices = True``),
  FFCV 1.0's shared memory (``declare_shared_memory``, passed last after its
  ``generate_code_for_shared_state`` ran on it), decoders taking four arguments.
- ``np.random`` in code: numba's generator is per thread, so FFCV 1.0 operations drawing
  from it would depend on how samples are spread over threads. Their wrapper reseeds it
  (numpy's global generator when the compiler is disabled) from (seed, chunk) before each
  call. Whether code draws from it is read from its bytecode, and the functions and
  modules it refers to, once.
- FFCV 1.0's crop decoders: a subclass of ``ResizedCropRGBImageDecoder`` naming its crop
  function with ``get_crop_generator`` gets its boxes from that function.
- whether code may run on chunks of a batch (FFCV 1.0 code looping with
  ``Compiler.get_iterator()``) is decided by the pipeline: see ``Operation.is_parallel``.
"""
import inspect
import sys
from typing import Callable, List, Sequence

import numpy as np
from ffcv_format.code_reading import refers_to
from numba import njit

from .compiler import Compiler
from .decoders import Decoder, default_decoder
from .kernels.crop import central_box_in_ratio, center_crop_box, crop_try
from .kernels.random import derive_seed
from .operation import Operation

__all__ = ['build_operations', 'is_decoder', 'decoder_call', 'transform_call', 'draws_from_np_random',
           'crop_boxes_from_generator', 'get_random_crop', 'get_center_crop']


def is_decoder(op) -> bool:
    """Whether ``op`` is a decoder (see the module's docstring for how one is recognised)."""
    if isinstance(op, Decoder):
        return True
    flag = getattr(op, 'is_decoder', None)
    if flag is not None:
        return bool(flag)
    return type(op).__name__.endswith('Decoder')


def _is_torch_module(op):
    torch = sys.modules.get('torch')   # a Module instance means torch is imported
    return torch is not None and isinstance(op, torch.nn.Module)


def build_operations(name: str, operations: Sequence, field) -> List[Operation]:
    """A pipeline's operations, decoder first, as FFCV 1.0 builds them from what a user gave."""
    from .transforms import ModuleWrapper, ToTensor

    ops = [ModuleWrapper(op) if _is_torch_module(op) else op for op in operations]
    for op in ops:
        if not isinstance(op, Operation):
            raise TypeError(f"pipeline {name!r}: {op!r} is not an Operation (nor a torch.nn.Module)")
    if not ops:
        return [default_decoder(field), ToTensor()]
    if not is_decoder(ops[0]):
        ops.insert(0, default_decoder(field))
    for op in ops[1:]:
        if is_decoder(op):
            raise ValueError(f"pipeline {name!r}: the decoder {op!r} must come first")
    return ops


# ------------------------------------------------------------ signatures


def _positional_parameters(code):
    """(number of positional parameters, whether it takes ``*args``), or (None, False)."""
    func = getattr(code, 'py_func', code)
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None, False
    positional = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    return positional, any(p.kind is p.VAR_POSITIONAL for p in params)


def _with_indices(code):
    return bool(getattr(code, 'with_indices', False) or getattr(getattr(code, 'py_func', None),
                                                                 'with_indices', False))


# ------------------------------------------------------------ np.random


def draws_from_np_random(code) -> bool:
    """Whether ``code`` (a function or numba dispatcher) uses ``np.random`` (or ``random``),
    directly or through the functions and modules it refers to."""
    return refers_to(code, _RANDOM)


_RANDOM = frozenset({'random'})


@njit(nogil=True, cache=True)
def _seed_numba_random(seed):
    np.random.seed(seed)


def _reseeder(code, compiled):
    """A function ``(seed, indices)`` that reseeds the generator ``code`` draws from, or None."""
    if not draws_from_np_random(code):
        return None
    seed_generator = _seed_numba_random if compiled and Compiler.is_enabled else np.random.seed

    def reseed(seed, indices):
        first = int(indices[0]) if indices.shape[0] else 0
        seed_generator(np.uint32(derive_seed(seed, first, indices.shape[0]) & 0xFFFFFFFF))

    return reseed


# ------------------------------------------------------------ the uniform calls


def decoder_call(op, code, compiled) -> Callable:
    """``code`` of decoder ``op`` as ``decode(indices, destination, metadata, storage_state, seed)``."""
    count, varargs = _positional_parameters(code)
    reseed = _reseeder(code, compiled)
    if _with_indices(code):
        def call(indices, destination, metadata, storage_state, seed):
            return code(indices, destination, indices, metadata, storage_state)
    elif (count is not None and count >= 5) or varargs:
        if reseed is None:
            return code
        call = code
    elif count == 4:
        def call(indices, destination, metadata, storage_state, seed):
            return code(indices, destination, metadata, storage_state)
    else:
        raise TypeError(f"{op!r}: a decoder's code takes (indices, destination, metadata, storage_state"
                        f"[, seed]); {getattr(code, '__name__', code)!r} takes {count} arguments")
    if reseed is None:
        return call

    def reseeded(indices, destination, metadata, storage_state, seed):
        reseed(seed, indices)
        return call(indices, destination, metadata, storage_state, seed)

    return reseeded


def transform_call(op, code, compiled, shared=False) -> Callable:
    """``code`` of transform ``op`` as ``code(inputs, destination, indices, seed)``.

    ``shared``: the operation declared FFCV 1.0's shared memory; ``destination`` then holds
    ``(its own memory, the shared memory)``, and the function of
    ``op.generate_code_for_shared_state()`` runs on the shared memory before each call.
    """
    count, varargs = _positional_parameters(code)
    reseed = _reseeder(code, compiled)
    if shared:
        shared_init = op.generate_code_for_shared_state() or (lambda memory: None)
        if compiled:
            shared_init = Compiler.compile(shared_init)
        takes_indices = _with_indices(code)   # FFCV 1.0 passes (inputs, memory[, indices], shared)

        def call(inputs, destination, indices, seed):
            own, shared = destination
            shared_init(shared)
            if takes_indices:
                return code(inputs, own, indices, shared)
            return code(inputs, own, shared)
    elif _with_indices(code) or count == 3:
        def call(inputs, destination, indices, seed):
            return code(inputs, destination, indices)
    elif count is not None and count >= 4:
        if reseed is None:
            return code
        call = code
    elif count == 2 or varargs:
        def call(inputs, destination, indices, seed):
            return code(inputs, destination)
    else:
        raise TypeError(f"{op!r}: an operation's code takes (inputs, destination[, indices[, seed]]); "
                        f"{getattr(code, '__name__', code)!r} takes {count} argument(s)")
    if reseed is None:
        return call

    def reseeded(inputs, destination, indices, seed):
        reseed(seed, indices)
        return call(inputs, destination, indices, seed)

    return reseeded


# ------------------------------------------------------------ FFCV 1.0 crop generators


def _box_loop(generator):
    """A compiled loop calling FFCV 1.0 crop function ``generator`` for each image."""

    @njit(nogil=True)
    def boxes(heights, widths, scale, ratio, seed, out):
        np.random.seed(seed)
        for i in range(heights.shape[0]):
            top, left, h, w = generator(heights[i], widths[i], scale, ratio)
            out[i, 0] = top
            out[i, 1] = left
            out[i, 2] = h
            out[i, 3] = w

    return boxes


def crop_boxes_from_generator(generator, scale, ratio) -> Callable:
    """The boxes of an FFCV 1.0 crop decoder: ``generator(height, width, scale, ratio)`` per
    image (``scale``/``ratio`` as numpy arrays, as FFCV 1.0 passes them), compiled with its
    ``np.random`` reseeded per chunk from (seed, chunk). Returns
    ``boxes(heights, widths, indices, seed, out)`` like ``ResizedCropRGBImageDecoder._boxes``."""
    scale = np.asarray(scale, dtype=np.float64) if isinstance(scale, (tuple, list)) else scale
    ratio = np.asarray(ratio, dtype=np.float64) if isinstance(ratio, (tuple, list)) else ratio
    if Compiler.is_enabled:
        compiled = generator if hasattr(generator, 'py_func') else njit(nogil=True)(generator)
        loop = _box_loop(compiled)
    else:
        loop = getattr(_box_loop(generator), 'py_func')

    def boxes(heights, widths, indices, seed, out):
        first = int(indices[0]) if indices.shape[0] else 0
        loop(heights, widths, scale, ratio, np.uint32(derive_seed(seed, first, indices.shape[0]) & 0xFFFFFFFF),
             out)

    return boxes


@njit(nogil=True)
def get_random_crop(height, width, scale, ratio):
    """FFCV 1.0's crop function of random resized crops (torchvision's rule), drawing from
    ``np.random``: what a crop decoder written for FFCV 1.0 may name with
    ``get_crop_generator``. ``scale`` and ``ratio`` are (min, max) arrays."""
    log_lo, log_hi = np.log(ratio[0]), np.log(ratio[1])
    for _ in range(10):
        top, left, h, w = crop_try(height, width, np.random.random(), np.random.random(), np.random.random(),
                                   np.random.random(), scale[0], scale[1], log_lo, log_hi)
        if h > 0:
            return top, left, h, w
    return central_box_in_ratio(height, width, log_lo, log_hi)


@njit(nogil=True)
def get_center_crop(height, width, scale, ratio):
    """FFCV 1.0's crop function of center crops (``scale`` unused)."""
    return center_crop_box(height, width, ratio)
