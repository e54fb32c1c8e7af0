"""FFCV 1.0's ``ffcv.utils``: small helpers FFCV 1.0 code imports."""
import threading

from ffcv_format.spec import align_up as align_to_page
from ffcv_ops.kernels.copy import cast_int_to_byte_ptr

_print_lock = threading.Lock()


def chunks(sequence, n):
    """``sequence`` in consecutive pieces of ``n`` (the last one shorter)."""
    for start in range(0, len(sequence), n):
        yield sequence[start:start + n]


def is_power_of_2(n):
    return n > 0 and n & (n - 1) == 0


def decode_null_terminated_string(data):
    """The ASCII text of a zero-terminated byte array (a field name in a descriptor)."""
    return data.tobytes().decode('ascii').split('\0')[0]


def s_print(*args, **kwargs):
    """``print`` that threads do not interleave."""
    with _print_lock:
        print(*args, **kwargs)


__all__ = ['chunks', 'is_power_of_2', 'align_to_page', 'decode_null_terminated_string', 'cast_int_to_byte_ptr',
           's_print']
