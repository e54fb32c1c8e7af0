"""Pipelines given as data (JSON, YAML, or Python lists and dicts), never as code.

A pipeline is a list of items; an item is ``{"op": NAME, ARGUMENT: VALUE, ...}`` (keyword
arguments of the operation's constructor) or just ``NAME`` when it takes none. Names are
resolved through ``ffcv_ops.registry`` (the ``ffcv.ops`` entry points), so operations of
installed plugins are named like the built-ins::

    pipeline_from_data([{"op": "RandomResizedCropRGBImageDecoder", "output_size": [112, 112]},
                        "RandomHorizontalFlip", "ToTensor", "ToTorchImage"])

``pipelines_from_data({"image": [...], "label": ["IntDecoder", "ToTensor"]})`` makes the
``pipelines`` dict a ``Loader`` takes (``null``/``None`` leaves a field out), and
``load_pipelines(path_or_text)`` reads that mapping from a JSON or YAML file or text.

Values are converted in two documented cases only:

- every list becomes a tuple (JSON has no tuples; sizes, ranges and fills are tuples);
- a string given for a dtype argument (a parameter named ``dtype``, ``type`` or ending in
  ``_dtype``) becomes ``numpy.dtype(value)`` (``"float16"``, ``"uint8"``), or the torch
  dtype for ``"torch.float16"`` and the like.

Nothing is evaluated: names are looked up in the registry, values stay data.
"""
from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .operation import Operation
from .registry import OpRegistryError, resolve_op

__all__ = [
    'PipelineDataError',
    'describe_item',
    'load_pipelines',
    'pipeline_from_data',
    'pipelines_from_data',
    'read_data',
]

#: the key of an item that names its operation
OP_KEY = 'op'


class PipelineDataError(ValueError):
    """A pipeline given as data that cannot be built; the message names the position
    (``pipeline 'image', item 2``, items counted from 1) and what would be accepted."""


def _where(name: str | None, position: int | None = None) -> str:
    where = 'pipeline' if name is None else f"pipeline {name!r}"
    return where if position is None else f"{where}, item {position}"


def _is_dtype_parameter(parameter: str) -> bool:
    return parameter in ('dtype', 'type') or parameter.endswith('_dtype')


def _dtype(value: str, parameter: str, where: str):
    if value.startswith('torch.'):
        try:
            import torch
        except ImportError:
            raise PipelineDataError(f"{where}: {parameter}={value!r} needs torch, which is not installed") from None
        found = getattr(torch, value[len('torch.'):], None)
        if not isinstance(found, torch.dtype):
            raise PipelineDataError(f"{where}: {parameter}={value!r} is not a torch dtype "
                                    f"(e.g. 'torch.float16', 'torch.uint8')")
        return found
    try:
        return np.dtype(value)
    except TypeError:
        raise PipelineDataError(f"{where}: {parameter}={value!r} is not a numpy dtype name "
                                f"(e.g. 'float16', 'float32', 'uint8'; 'torch.float16' for torch)") from None


def _as_tuples(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_tuples(v) for k, v in value.items()}
    return value


def _signature_text(cls: type) -> str:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return '(its signature cannot be read)'
    shown = []
    for p in parameters:
        if p.kind is p.VAR_KEYWORD:
            shown.append(f"**{p.name}")
        elif p.kind is p.VAR_POSITIONAL:
            shown.append(f"{p.name}=[...]")
        elif p.default is p.empty:
            shown.append(f"{p.name} (required)")
        else:
            default = p.default
            shown.append(f"{p.name}={default!r}" if type(default) is not object else p.name)
    return f"{cls.__name__} takes: {', '.join(shown)}" if shown else f"{cls.__name__} takes no arguments"


def _arguments(cls: type, given: dict, where: str) -> tuple[list, dict]:
    """(positional, keyword) arguments for ``cls`` from an item's keys, converted and checked
    against the signature."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return [], {k: _as_tuples(v) for k, v in given.items()}
    parameters = signature.parameters
    positional, keywords = [], {}
    for key, value in given.items():
        parameter = parameters.get(key)
        value = _as_tuples(value)
        if isinstance(value, str) and _is_dtype_parameter(key):
            value = _dtype(value, key, where)
        if parameter is not None and parameter.kind is parameter.VAR_POSITIONAL:
            positional.extend(value if isinstance(value, tuple) else (value,))
        else:
            keywords[key] = value
    try:
        signature.bind(*positional, **keywords)
    except TypeError as e:
        raise PipelineDataError(f"{where}: {cls.__name__}: {e} ({_signature_text(cls)})") from None
    return positional, keywords


def _operation(item: Any, name: str | None, position: int) -> Operation:
    where = _where(name, position)
    if isinstance(item, str):
        op_name, given = item, {}
    elif isinstance(item, Mapping):
        if OP_KEY not in item:
            raise PipelineDataError(f"{where}: {dict(item)!r} has no {OP_KEY!r} key: write "
                                    f'{{"{OP_KEY}": NAME, ARGUMENT: VALUE, ...}} or just NAME')
        given = {k: v for k, v in item.items() if k != OP_KEY}
        op_name = item[OP_KEY]
        bad_keys = [k for k in given if not isinstance(k, str) or not k.isidentifier()]
        if bad_keys:
            raise PipelineDataError(f"{where}: {bad_keys[0]!r} is not an argument name")
    else:
        raise PipelineDataError(f"{where}: {item!r} ({type(item).__name__}) is not an operation: write "
                                f'{{"{OP_KEY}": NAME, ARGUMENT: VALUE, ...}} or just NAME')
    try:
        cls = resolve_op(op_name)
    except OpRegistryError as e:
        raise PipelineDataError(f"{where}: {e}") from None
    positional, keywords = _arguments(cls, given, where)
    try:
        return cls(*positional, **keywords)
    except (TypeError, ValueError) as e:
        raise PipelineDataError(f"{where}: {describe_item(item)} fails: {e} ({_signature_text(cls)})") from None


def pipeline_from_data(spec: Sequence[Any], name: str | None = None) -> list[Operation]:
    """The operations of a pipeline given as data (``name``: the field, for messages).

    >>> pipeline_from_data(["IntDecoder", {"op": "ToTensor"}])          # doctest: +SKIP
    [IntDecoder(), ToTensor()]
    """
    if isinstance(spec, (str, bytes, Mapping)) or not isinstance(spec, Sequence):
        raise PipelineDataError(f"{_where(name)}: a pipeline is a list of operations, got "
                                f"{type(spec).__name__} {spec!r}")
    return [_operation(item, name, position) for position, item in enumerate(spec, start=1)]


def pipelines_from_data(mapping: Mapping[str, Any]) -> dict[str, list[Operation] | None]:
    """``{field: [items]}`` -> the ``pipelines`` dict of a ``Loader`` (``None`` leaves a field out)."""
    if not isinstance(mapping, Mapping):
        raise PipelineDataError(f"pipelines are a mapping of field name -> list of operations, got "
                                f"{type(mapping).__name__} {mapping!r}")
    return {str(field): (None if spec is None else pipeline_from_data(spec, str(field)))
            for field, spec in mapping.items()}


def _yaml():
    try:
        import yaml
    except ImportError:
        return None
    return yaml


def read_data(path_or_text: str | os.PathLike) -> Any:
    """The data of a JSON or YAML file (a path) or text.

    JSON is tried first; YAML (a superset) when pyyaml is installed. A path ending in
    ``.yaml``/``.yml`` is read as YAML.
    """
    is_path = isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str) and '\n' not in path_or_text and os.path.isfile(path_or_text))
    if is_path:
        source = os.fspath(path_or_text)
        with open(source, encoding='utf-8') as f:
            text = f.read()
        yaml_first = source.endswith(('.yaml', '.yml'))
    else:
        source, text, yaml_first = None, str(path_or_text), False
    label = f"file {source!r}" if source else f"text {text if len(text) < 80 else text[:77] + '...'!r}"
    yaml = _yaml()
    if not yaml_first:
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            json_error = e
    else:
        json_error = None
    if yaml is None:
        raise PipelineDataError(f"{label}: not JSON ({json_error}); YAML needs pyyaml, which is not installed "
                                f"(pip install pyyaml)" if json_error else
                                f"{label}: YAML needs pyyaml, which is not installed (pip install pyyaml)")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        problem = ' '.join(str(e).split())
        raise PipelineDataError(f"{label}: neither JSON nor YAML ({problem})") from None
    if source is None and isinstance(data, str):
        raise PipelineDataError(f"{label}: no such file, and not pipelines written as JSON or YAML")
    return data


def load_pipelines(path_or_text: str | os.PathLike) -> dict[str, list[Operation] | None]:
    """The ``pipelines`` dict of a JSON or YAML mapping ``{field: [items]}`` (a file or text)."""
    return pipelines_from_data(read_data(path_or_text))


def describe_item(item: Any) -> str:
    """An item as short text: ``Name`` or ``Name(argument=value, ...)``."""
    if isinstance(item, Mapping):
        arguments = ', '.join(f"{k}={_as_tuples(v)!r}" for k, v in item.items() if k != OP_KEY)
        return f"{item.get(OP_KEY)}({arguments})" if arguments else str(item.get(OP_KEY))
    return str(item)
