"""Copying sample bytes out of storage into batch buffers."""
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..storage import OK, OUTSIDE, TOO_LARGE, WRONG_SIZE, find_in, find_once, resident_in


@intrinsic
def copy_bytes(typingctx, dst, dst_start, src, src_start, nbytes):
    """``dst.flat[dst_start:dst_start + nbytes] = src.flat[src_start:...]`` for C-contiguous
    uint8 arrays, as one ``memcpy``. numba's slice assignment copies element by element:
    3-5x slower for samples of hundreds of KiB (measured: 2 vs 7.5-11 GB/s on one thread)."""
    if not all(isinstance(a, types.Array) and a.layout == 'C' and a.dtype == types.uint8 for a in (dst, src)):
        raise TypeError(f"copy_bytes needs C-contiguous uint8 arrays, got {dst} and {src}")
    sig = types.void(dst, types.intp, src, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        d = context.make_array(signature.args[0])(context, builder, args[0])
        s = context.make_array(signature.args[2])(context, builder, args[2])
        cgutils.raw_memcpy(builder, builder.gep(d.data, [args[1]]), builder.gep(s.data, [args[3]]), args[4], 1)
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, cache=True)
def gather_scalars(column, indices, out):
    """``out[i, 0] = column[indices[i]]`` (integer and float fields)."""
    for i in range(indices.shape[0]):
        out[i, 0] = column[indices[i]]


@njit(nogil=True, cache=True)
def gather_fixed(ptrs, samples, nbytes, state, out, checked):
    """Fixed-size allocations (NDArray fields, raw images) of ``samples`` into rows of a
    C-contiguous uint8 matrix. Each allocation must be exactly ``nbytes`` long. Returns
    ``(row, problem code)`` of the first sample whose data is not as it must be (see
    ``ffcv_ops.storage``), or ``(-1, 0)``; ``out[row]`` is then not written.

    ``checked`` (``ffcv_ops.storage.sample_bits``, one per decoder and field) has a bit per
    sample whose pointer was found to be its own allocation of ``nbytes`` bytes: the table is
    looked up once per sample, later reads check the data region and the page's residency
    only. In a table of millions of entries the lookup misses the cache, which for samples
    of a few KiB read in random order costs as much as copying them (the suite's
    ndarray_3KiB_random workload); the metadata does not change, so once is enough."""
    data, page_offsets, shift, alloc_ptrs, alloc_sizes, alloc_samples, data_start, data_end, page_entries = state
    row = out.shape[1]
    if nbytes > row:
        return 0, TOO_LARGE
    for i in range(ptrs.shape[0]):
        sample = np.int64(samples[i])
        ptr = np.uint64(ptrs[i])
        byte = sample >> 3
        bit = np.uint8(1 << (sample & 7))
        if byte >= checked.shape[0]:
            return i, OUTSIDE
        if checked[byte] & bit:
            if ptr < np.uint64(data_start) or ptr >= np.uint64(data_end):
                return i, OUTSIDE
            start, code = resident_in(ptr, nbytes, data, page_offsets, shift)
            size = np.int64(nbytes)
        else:
            start, size, code = find_once(ptr, sample, data, page_offsets, shift, alloc_ptrs, alloc_sizes,
                                          alloc_samples, data_start, data_end, page_entries)
            if code == OK and size == nbytes:
                checked[byte] |= bit        # a race between threads only loses a bit: checked again
        if code != OK:
            return i, code
        if size != nbytes:
            return i, WRONG_SIZE
        copy_bytes(out, i * row, data, start, nbytes)
    return -1, OK


@njit(nogil=True, cache=True)
def gather_sized(ptrs, sizes, samples, state, out):
    """Variable-size allocations (Bytes fields) of ``samples`` into zero-padded rows of a
    C-contiguous uint8 matrix; ``sizes`` are the sizes the metadata records, which the
    allocations must have. Returns ``(row, problem code)`` like ``gather_fixed``."""
    data, page_offsets, shift, alloc_ptrs, alloc_sizes, alloc_samples, data_start, data_end, page_entries = state
    row = out.shape[1]
    for i in range(ptrs.shape[0]):
        start, size, code = find_in(ptrs[i], samples[i], data, page_offsets, shift, alloc_ptrs, alloc_sizes,
                                    alloc_samples, data_start, data_end, page_entries)
        if code != OK:
            return i, code
        if size != sizes[i]:
            return i, WRONG_SIZE
        if size > row:
            return i, TOO_LARGE
        copy_bytes(out, i * row, data, start, size)
        out[i, size:] = 0
    return -1, OK


@njit(nogil=True, cache=True)
def memcpy(source, destination):
    """Copy the bytes of ``source`` into ``destination``: C-contiguous arrays of the same
    size in bytes, of any types (FFCV 1.0's ``libffcv.memcpy``, callable from numba code)."""
    src = source.reshape(-1).view(np.uint8)
    dst = destination.reshape(-1).view(np.uint8)
    if src.shape[0] != dst.shape[0]:
        raise ValueError("memcpy: the arrays differ in size")
    copy_bytes(dst, 0, src, 0, src.shape[0])


@intrinsic
def cast_int_to_byte_ptr(typingctx, address):
    """An integer address as a ``uint8*`` in numba code (FFCV 1.0's ``ffcv.utils`` helper, for
    passing buffers to C functions called from compiled code)."""
    if not isinstance(address, types.Integer):
        raise TypeError(f"cast_int_to_byte_ptr takes an integer address, got {address}")
    sig = types.CPointer(types.uint8)(types.uintp)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen
