"""Reading what a Python function refers to, without running it.

Used where the library must know, before running user code on several threads, whether
that code draws from a random generator shared by the threads (numpy's and Python's global
generators; torch's): ``DatasetWriter`` reads such a dataset one sample at a time, and
pipelines reseed numba's generator for FFCV 1.0 operations that draw from ``np.random``.
"""
import random
import types
from typing import Callable, FrozenSet

import numpy as np

__all__ = ['refers_to', 'GLOBAL_RANDOM_NAMES']

#: names through which code reaches a generator that threads share: ``np.random.*`` and
#: ``random.*`` (attribute ``random``), torch's global generator
GLOBAL_RANDOM_NAMES = frozenset({'random', 'manual_seed', 'rand', 'randn', 'randint', 'randperm', 'rand_like',
                                 'randn_like', 'randint_like'})


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def refers_to(func: Callable, names: FrozenSet[str], _seen=None) -> bool:
    """Whether ``func`` (a function, method or numba dispatcher) uses any of ``names`` as a
    global, attribute or free variable, or calls (through its globals, closure, or a
    module's attributes) a function that does; a bound method of a numpy ``RandomState``
    or a ``random.Random`` (``from numpy.random import rand``) counts as ``'random'``.
    Conservative where it cannot see: code it cannot read counts as not referring."""
    func = getattr(func, '__func__', func)
    func = getattr(func, 'py_func', func)
    seen = set() if _seen is None else _seen
    if id(func) in seen:
        return False
    seen.add(id(func))
    body = getattr(func, '__code__', None)
    if body is None:
        return False
    used = set()
    for code in _code_objects(body):
        used.update(code.co_names)
        used.update(code.co_freevars)
    if used & names:
        return True
    scope = dict(getattr(func, '__globals__', {}))
    for var, cell in zip(body.co_freevars, getattr(func, '__closure__', None) or ()):
        try:
            scope[var] = cell.cell_contents
        except ValueError:
            pass
    for name in used:
        target = scope.get(name)
        if isinstance(target, types.ModuleType):
            candidates = [getattr(target, attr, None) for attr in used]   # module.attribute
        else:
            candidates = [target]
        for candidate in candidates:
            if 'random' in names and isinstance(getattr(candidate, '__self__', None),
                                                (np.random.RandomState, random.Random)):
                return True
            inner = getattr(candidate, '__func__', candidate)
            if (callable(candidate) and hasattr(getattr(inner, 'py_func', inner), '__code__')
                    and refers_to(candidate, names, seen)):
                return True
    return False
