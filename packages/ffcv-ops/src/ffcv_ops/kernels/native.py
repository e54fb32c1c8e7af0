"""Calling C libraries from compiled kernels, without the GIL and without ctypes objects.

numba can call a ctypes function, but a kernel that does is never cached (the address
differs in every process), and a kernel that must be compiled at every start costs seconds.
Here C functions are called through addresses the kernel receives as arguments, so the
kernels are cached like any other: ``c_function(restype, *argtypes)`` makes a compiled
``call(address, *args)`` for one C signature.

Also here: reading and writing plain memory at an address (the fields of a C struct the
kernel owns), and ``setjmp``/``longjmp``, which C libraries that report errors by never
returning from a callback (libjpeg's ``error_exit``) need. The rules for a function that
calls :func:`set_jump`: it takes and holds only numbers (no arrays: the reference counts of
arrays created between ``set_jump`` and a jump back would be skipped), and after a jump
back (``set_jump`` returns non-zero) it only returns. And an address taken from an array
(``array.ctypes.data``) is only good while the array lives: numba frees a local array after
its last use, whatever numbers were taken from it, so addresses are taken from arrays the
kernel receives as arguments.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_I8P = ir.IntType(8).as_pointer()
#: the C types a signature may use: pointers travel as uint64 addresses
_C_TYPES = {
    'void': (ir.VoidType(), types.void),
    'ptr': (_I8P, types.uint64),
    'i32': (ir.IntType(32), types.int32),
    'u32': (ir.IntType(32), types.uint32),
    'i64': (ir.IntType(64), types.int64),
}


def _to_c(builder, value, numba_type, c_type):
    """``value`` (of ``numba_type``, an integer) as the C argument type ``c_type``."""
    if c_type == 'ptr':
        return builder.inttoptr(value, _I8P)
    width = _C_TYPES[c_type][0].width
    if value.type.width > width:
        return builder.trunc(value, ir.IntType(width))
    if value.type.width < width:
        return builder.sext(value, ir.IntType(width)) if numba_type.signed else builder.zext(value, ir.IntType(width))
    return value


def c_function(restype: str, *argtypes: str):
    """A compiled ``call(address, *args)`` calling the C function at ``address`` with the
    signature ``restype(*argtypes)`` (names from ``'void', 'ptr', 'i32', 'u32', 'i64'``;
    pointers are passed and returned as uint64 addresses, integers of any width are
    converted to the C type)."""
    c_result, numba_result = _C_TYPES[restype]
    c_args = [_C_TYPES[a][0] for a in argtypes]

    def typer(address, args):
        if len(args) != len(argtypes) or not all(isinstance(a, types.Integer) for a in (address, *args)):
            raise TypeError(f"a C call {restype}({', '.join(argtypes)}) takes an address and "
                            f"{len(argtypes)} integers, got {address} and {args}")
        sig = numba_result(types.uint64, *args)

        def codegen(context, builder, signature, llargs):
            function = builder.inttoptr(llargs[0], ir.FunctionType(c_result, c_args).as_pointer())
            values = [_to_c(builder, v, t, c) for v, t, c in zip(llargs[1:], signature.args[1:], argtypes)]
            result = builder.call(function, values)
            if restype == 'void':
                return context.get_dummy_value()
            if restype == 'ptr':
                return builder.ptrtoint(result, ir.IntType(64))
            return result

        return sig, codegen

    # numba's intrinsics take no *args: one definition per arity
    if len(argtypes) == 1:
        call = intrinsic(lambda typingctx, address, a: typer(address, (a,)))
    elif len(argtypes) == 2:
        call = intrinsic(lambda typingctx, address, a, b: typer(address, (a, b)))
    elif len(argtypes) == 3:
        call = intrinsic(lambda typingctx, address, a, b, c: typer(address, (a, b, c)))
    else:
        raise ValueError(f"c_function supports 1 to 3 arguments, got {len(argtypes)}")
    return call


def _load(width, numba_type):
    @intrinsic
    def load(typingctx, address):
        def codegen(context, builder, signature, args):
            return builder.load(builder.inttoptr(args[0], ir.IntType(width).as_pointer()))
        return numba_type(types.uint64), codegen
    return load


def _store(width):
    @intrinsic
    def store(typingctx, address, value):
        if not isinstance(value, types.Integer):
            raise TypeError(f"store{width} writes an integer, got {value}")

        def codegen(context, builder, signature, args):
            builder.store(_to_c(builder, args[1], signature.args[1], 'i64' if width == 64 else 'i32'),
                          builder.inttoptr(args[0], ir.IntType(width).as_pointer()))
            return context.get_dummy_value()
        return types.void(types.uint64, value), codegen
    return store


#: ``load_u32(address)``, ``load_u64(address)``: the unsigned integer stored at ``address``
load_u32 = _load(32, types.uint32)
load_u64 = _load(64, types.uint64)
#: ``store_u32(address, value)``, ``store_u64(address, value)``
store_u32 = _store(32)
store_u64 = _store(64)


@intrinsic
def set_jump(typingctx, buffer):
    """C's ``setjmp(buffer)`` (glibc's ``_setjmp``: the signal mask is not saved): 0 when
    called, the value given to :func:`long_jump` when the program jumps back to it.
    ``buffer`` is the address of a ``jmp_buf`` (at most :data:`JUMP_BUFFER_BYTES` bytes)."""
    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), [_I8P]),
                                                  '_setjmp')
        function.attributes.add('returns_twice')   # so that the optimiser keeps what must survive
        return builder.call(function, [builder.inttoptr(args[0], _I8P)])
    return types.int32(types.uint64), codegen


@intrinsic
def long_jump(typingctx, buffer):
    """C's ``longjmp(buffer, 1)``: does not return."""
    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [_I8P, ir.IntType(32)]), 'longjmp')
        function.attributes.add('noreturn')
        builder.call(function, [builder.inttoptr(args[0], _I8P), ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()
    return types.void(types.uint64), codegen


#: room reserved for a ``jmp_buf`` (glibc: 200 bytes on x86-64, 312 on aarch64)
JUMP_BUFFER_BYTES = 512
