"""Operations by name: the entry-point group ``ffcv.ops``.

Every operation that can be named in a pipeline given as data (``ffcv_ops.pipeline_data``,
``ffcv doctor --pipeline``) is an entry point of the group ``ffcv.ops``: its name is the
operation's name, its value ``module:Class``. The built-in decoders and transforms register
the same way, in ffcv-ops' own ``pyproject.toml``; a plugin distribution declares its own::

    [project.entry-points."ffcv.ops"]
    ChannelShuffle = "ffcv_ops_example.shuffle:ChannelShuffle"

The list of entry points is read once per process (``refresh_ops()`` reads it again, after
installing a plugin in a running process); a class is imported only when its name is
asked for. Built-ins (the distribution ``ffcv-ops``) come first. One name offered by two
distributions is an error naming both, never a silent override.

>>> resolve_op('RandomHorizontalFlip')
<class 'ffcv_ops.transforms.augment.RandomHorizontalFlip'>
>>> available_ops()['IntDecoder']
'ffcv_ops.decoders.basics:IntDecoder'
"""
from __future__ import annotations

import difflib
import importlib
import re
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points

from .operation import Operation

__all__ = [
    'BUILTIN_DISTRIBUTION',
    'GROUP',
    'DuplicateOpError',
    'OpEntry',
    'OpRegistryError',
    'UnknownOpError',
    'available_ops',
    'op_entries',
    'refresh_ops',
    'resolve_op',
]

#: the entry-point group operations register in
GROUP = 'ffcv.ops'
#: the distribution whose operations are the built-ins
BUILTIN_DISTRIBUTION = 'ffcv-ops'


class OpRegistryError(ValueError):
    """An operation name that cannot be resolved (a ``ValueError``: a wrong name is the
    user's to fix)."""


class UnknownOpError(OpRegistryError):
    """No installed distribution offers an operation of this name."""


class DuplicateOpError(OpRegistryError):
    """Two distributions offer an operation of the same name."""


@dataclass(frozen=True)
class OpEntry:
    """One ``ffcv.ops`` entry point: ``name``, ``target`` (``'module:Class'``) and the
    distribution that declares it."""
    name: str
    target: str
    distribution: str

    @property
    def builtin(self) -> bool:
        return _canonical(self.distribution) == BUILTIN_DISTRIBUTION


def _canonical(distribution: str) -> str:
    """A distribution name as packaging compares them (``ffcv_ops`` == ``FFCV-Ops``)."""
    return re.sub(r'[-_.]+', '-', distribution).lower()


class _Registry:
    """The entry points as read once, and the classes imported so far."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, list[OpEntry]] | None = None
        self._classes: dict[str, type] = {}

    def entries(self) -> dict[str, list[OpEntry]]:
        """name -> every entry offering it (built-ins first, then by distribution name)."""
        with self._lock:
            if self._entries is None:
                found: dict[str, list[OpEntry]] = {}
                for point in entry_points(group=GROUP):
                    distribution = point.dist.name if point.dist is not None else '(unknown distribution)'
                    found.setdefault(point.name, []).append(OpEntry(point.name, point.value, distribution))
                order = sorted(found, key=lambda n: (not any(e.builtin for e in found[n]), n))
                self._entries = {name: sorted(found[name], key=lambda e: (not e.builtin, e.distribution))
                                 for name in order}
            return self._entries

    def forget(self):
        with self._lock:
            self._entries = None
            self._classes = {}


_REGISTRY = _Registry()


def refresh_ops() -> None:
    """Read the ``ffcv.ops`` entry points again (after installing a plugin in a running
    process, or changing ``sys.path``); forget the classes imported so far."""
    _REGISTRY.forget()


def op_entries() -> list[OpEntry]:
    """Every ``ffcv.ops`` entry point, built-ins first, duplicates included (see
    ``available_ops`` for the checked name -> target mapping)."""
    return [entry for entries in _REGISTRY.entries().values() for entry in entries]


def _duplicate_error(name: str, entries: list[OpEntry]) -> DuplicateOpError:
    offers = '; '.join(f"{e.distribution} ({e.target})" for e in entries)
    return DuplicateOpError(f"operation {name!r} is offered by {len(entries)} distributions: {offers}. "
                            f"Names of the {GROUP!r} entry points must be unique: uninstall one of them "
                            f"or ask its authors to rename it")


def available_ops() -> dict[str, str]:
    """name -> ``'module:Class'`` of every operation that can be named, built-ins first.

    Imports nothing. Raises ``DuplicateOpError`` if two distributions offer one name.
    """
    result = {}
    for name, entries in _REGISTRY.entries().items():
        if len(entries) > 1:
            raise _duplicate_error(name, entries)
        result[name] = entries[0].target
    return result


def _where_names_come_from(entries: dict[str, list[OpEntry]]) -> str:
    distributions = sorted({e.distribution for offers in entries.values() for e in offers},
                           key=lambda d: (_canonical(d) != BUILTIN_DISTRIBUTION, d))
    text = (f"operations are the {GROUP!r} entry points of the installed distributions "
            f"({', '.join(distributions) or 'none found'}); a plugin installed after they were read "
            f"needs ffcv_ops.registry.refresh_ops()")
    if not any(_canonical(d) == BUILTIN_DISTRIBUTION for d in distributions):
        text += (". The built-in operations' entry points are missing: ffcv-ops' installed metadata "
                 "predates them (an editable install keeps the metadata of when it was made): reinstall "
                 "it (pip install --no-deps -e packages/ffcv-ops; hatch: hatch env prune)")
    return text


def resolve_op(name: str) -> type:
    """The operation class registered under ``name`` (imported on first use).

    Raises ``UnknownOpError`` (listing close names and where the names come from),
    ``DuplicateOpError`` (naming both distributions and both targets), or
    ``OpRegistryError`` if the target cannot be imported or is not an ``Operation``.
    """
    if not isinstance(name, str):
        raise UnknownOpError(f"an operation name is a string, got {name!r} ({type(name).__name__})")
    cached = _REGISTRY._classes.get(name)
    if cached is not None:
        return cached
    entries = _REGISTRY.entries()
    offers = entries.get(name)
    if not offers:
        close = difflib.get_close_matches(name, list(entries), n=5, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ''
        raise UnknownOpError(f"unknown operation {name!r}: {hint}({_where_names_come_from(entries)})")
    if len(offers) > 1:
        raise _duplicate_error(name, offers)
    entry = offers[0]
    cls = _load(entry)
    _REGISTRY._classes[name] = cls
    return cls


def _load(entry: OpEntry) -> type:
    module_name, _, attribute = entry.target.partition(':')
    where = f"operation {entry.name!r} ({entry.target}, from {entry.distribution})"
    if not module_name or not attribute:
        raise OpRegistryError(f"{where}: an entry point's value must be 'module:Class'")
    try:
        value = importlib.import_module(module_name.strip())
    except ImportError as e:
        raise OpRegistryError(f"{where}: cannot import {module_name!r} ({e})") from e
    for part in attribute.strip().split('.'):
        if not hasattr(value, part):
            raise OpRegistryError(f"{where}: {module_name} has no {attribute!r}")
        value = getattr(value, part)
    if not (isinstance(value, type) and issubclass(value, Operation)):
        raise OpRegistryError(f"{where}: {attribute} is {value!r}, not a subclass of ffcv_ops.Operation")
    return value
