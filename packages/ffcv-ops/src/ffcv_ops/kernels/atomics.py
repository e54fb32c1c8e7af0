"""Atomic operations on the elements of int64 arrays, for compiled code that several threads
run at once without the GIL (``kernels/chunk_ring.py``).

numba has no atomics on the CPU; these are LLVM's (``atomicrmw``, ``cmpxchg``, atomic loads
and stores), sequentially consistent, so that what a thread wrote before a store is seen by
a thread that loads the stored value, on x86-64 and on aarch64 alike. The arrays must be
C-contiguous int64 arrays; indices are not checked (the callers use fixed positions).
"""
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _element_pointer(context, builder, array_type, array, index):
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index])


def _check(array, *numbers):
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1):
        raise TypeError(f"atomics work on 1-d int64 arrays, got {array}")
    for number in numbers:
        if not isinstance(number, types.Integer):
            raise TypeError(f"atomics take integers, got {number}")


@intrinsic
def atomic_add(typingctx, array, index, value):
    """``array[index] += value`` atomically; returns the value before."""
    _check(array, index, value)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        amount = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw('add', ptr, amount, 'seq_cst')

    return types.int64(array, index, value), codegen


@intrinsic
def atomic_load(typingctx, array, index):
    """``array[index]``, read atomically."""
    _check(array, index)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, 'seq_cst', 8)

    return types.int64(array, index), codegen


@intrinsic
def atomic_store(typingctx, array, index, value):
    """``array[index] = value``, written atomically."""
    _check(array, index, value)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(context.cast(builder, args[2], signature.args[2], types.int64), ptr, 'seq_cst', 8)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@intrinsic
def compare_and_swap(typingctx, array, index, expected, new):
    """``array[index] = new`` if it holds ``expected``, atomically; returns whether it did."""
    _check(array, index, expected, new)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        old = context.cast(builder, args[2], signature.args[2], types.int64)
        value = context.cast(builder, args[3], signature.args[3], types.int64)
        pair = builder.cmpxchg(ptr, old, value, 'seq_cst', 'seq_cst')
        return builder.extract_value(pair, 1)

    return types.boolean(array, index, expected, new), codegen
