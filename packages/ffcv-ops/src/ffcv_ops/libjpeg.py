"""The libjpeg the compiled JPEG kernels call (``kernels/jpeg.py``): found, loaded, checked.

It is the libjpeg-turbo that Pillow's wheels ship (a dependency; no system library is
needed). Pillow loads it with its ``_imaging`` module, so the library is the one mapped into
the process after that import (read from ``/proc/self/maps`` on Linux), or else the one in
the wheel's ``pillow.libs`` (Linux) or ``PIL/.dylibs`` (macOS) folder. ``FFCV_LIBJPEG``
overrides the choice: a path to a libjpeg(-turbo) shared library with the ABI version 62,
or ``off`` to decode JPEGs through simplejpeg, one Python call per image, as before.

Before use, a decompressor is made and destroyed: a library of another ABI version or
struct size refuses (libjpeg's own check), and the compiled path is then not used; the
reason is in :func:`libjpeg_status`.
"""
import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .kernels import jpeg as kernels


@dataclass(frozen=True)
class LibJpeg:
    """A loaded, checked libjpeg: ``functions`` is the table of addresses the kernels call
    (in ``kernels.jpeg.FUNCTION_NAMES`` order), ``handlers`` the error callbacks'."""
    path: str
    functions: np.ndarray
    handlers: np.ndarray


_LOADED: 'LibJpeg | None | bool' = False   # False: not tried yet
_REASON = ''


def libjpeg() -> 'LibJpeg | None':
    """The library the compiled JPEG path uses, or None (see :func:`libjpeg_status`)."""
    global _LOADED, _REASON
    if _LOADED is False:
        try:
            _LOADED = _load()
            _REASON = f"compiled, GIL-free JPEG decoding with {_LOADED.path}"
        except _Unavailable as e:
            _LOADED, _REASON = None, f"JPEGs decoded through simplejpeg, one call per image: {e}"
    return _LOADED


def libjpeg_status() -> str:
    """One line: which JPEG path the decoders take and, if not the compiled one, why."""
    libjpeg()
    return _REASON


class _Unavailable(Exception):
    pass


def _candidates() -> list[str]:
    choice = os.environ.get('FFCV_LIBJPEG', '').strip()
    if choice.lower() in ('off', '0', 'no', 'false'):
        raise _Unavailable("FFCV_LIBJPEG=off")
    if choice:
        return [choice]
    try:
        import PIL
        import PIL._imaging  # noqa: F401  (maps Pillow's libjpeg into the process)
    except ImportError as e:
        raise _Unavailable(f"Pillow is not importable ({e})") from None
    found = []
    if sys.platform.startswith('linux'):
        try:
            with open('/proc/self/maps') as maps:
                for line in maps:
                    path = line.rsplit(None, 1)[-1] if line.count('/') else ''
                    if '/libjpeg' in path and path not in found:
                        found.append(path)
        except OSError:
            pass
    package = Path(PIL.__file__).resolve().parent
    for folder, pattern in ((package.parent / 'pillow.libs', 'libjpeg*.so*'), (package / '.dylibs', 'libjpeg*.dylib')):
        found += [str(p) for p in sorted(folder.glob(pattern)) if str(p) not in found]
    if not found:
        raise _Unavailable("no libjpeg found next to Pillow (a Pillow built against another JPEG library?); "
                           "FFCV_LIBJPEG=/path/to/libjpeg.so.62 names one")
    return found


def _load() -> LibJpeg:
    problems = []
    for path in _candidates():
        try:
            library = ctypes.CDLL(path)
            functions = np.array([ctypes.cast(getattr(library, name), ctypes.c_void_p).value
                                  for name in kernels.FUNCTION_NAMES], dtype=np.uint64)
        except (OSError, AttributeError) as e:
            problems.append(f"{path}: {e}")
            continue
        handlers = kernels.error_handlers()
        context = np.zeros(kernels.CONTEXT_BYTES // 8, np.uint64)
        address = np.uint64(context.ctypes.data)
        if kernels.open_decompressor(np.uint64(functions.ctypes.data), address,
                                     np.uint64(handlers.ctypes.data)) != kernels.OK:
            code = int(context.view(np.int32)[(kernels.ERROR_MANAGER + kernels.MSG_CODE) // 4])
            parameters = context.view(np.int32)[(kernels.ERROR_MANAGER + kernels.MSG_PARAMETERS) // 4:][:2]
            problems.append(f"{path}: refuses ABI version {kernels.JPEG_LIB_VERSION} with a "
                            f"{kernels.DECOMPRESS_STRUCT_BYTES}-byte struct (libjpeg message {code}, "
                            f"{int(parameters[0])}, {int(parameters[1])})")
            continue
        kernels.close_decompressor(np.uint64(functions.ctypes.data), address)
        return LibJpeg(path, functions, handlers)
    raise _Unavailable('; '.join(problems))
