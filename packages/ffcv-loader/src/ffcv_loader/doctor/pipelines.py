"""The pipelines ``ffcv doctor`` measures: ``--pipeline``/``--pipelines`` read as data
(``ffcv_ops.pipeline_data``; no user text is evaluated), a ``MODULE:FUNCTION`` returning them,
or a default per field kind."""
import copy
import importlib
import importlib.util
import os
import re
from dataclasses import dataclass

# Wrong values a user gave (a pipeline that is not a list of operations, a model that is not a
# module) raise ValueError, not TypeError: the ffcv command line prints a ValueError as one
# line and shows a TypeError's traceback, as a bug of ffcv.

#: what each kind of field gets when no pipeline is given (pipelines as data, like --pipeline)
DEFAULT_OPS = {
    'ImageField': [{'op': 'RandomResizedCropRGBImageDecoder', 'output_size': [224, 224]}, 'RandomHorizontalFlip',
                   'ToTensor', 'ToTorchImage'],
    'IntField': ['IntDecoder', 'ToTensor'],
    'FloatField': ['FloatDecoder', 'ToTensor'],
    'NDArrayField': ['NDArrayDecoder', 'ToTensor'],
}

#: ``FIELD=NAME,NAME,...``: operations without arguments, named without quotes or brackets
_NAMES_ONLY = re.compile(r'^\s*[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*,?\s*$')


def _field_pipeline_data(field_name, text):
    """The data of ``--pipeline FIELD=TEXT``: None (``None``/``null``: the field left out),
    [] (empty: the default decoder), a list of names (``A,B``), or JSON/YAML (a list)."""
    from ffcv_ops.pipeline_data import read_data
    stripped = text.strip()
    if stripped in ('None', 'null', '~'):
        return None
    if not stripped:
        return []
    if _NAMES_ONLY.match(stripped):
        return [name.strip() for name in stripped.split(',') if name.strip()]
    try:
        data = read_data(stripped)
    except ValueError as e:
        hint = (" (Python expressions are not evaluated: write the operations as data, e.g. "
                "'[{\"op\": \"RandomResizedCropRGBImageDecoder\", \"output_size\": [160, 160]}, "
                "\"RandomHorizontalFlip\"]')") if '(' in stripped else ''
        raise ValueError(f"--pipeline {field_name}={text}: {e}{hint}") from None
    if data is not None and not isinstance(data, list):
        raise ValueError(f"--pipeline {field_name}={text}: a pipeline is a list of operations "
                         f"(NAME or {{\"op\": NAME, ARGUMENT: VALUE}}), got {type(data).__name__}")
    return data


def load_callable(spec, option='--pipeline'):
    """``'package.module:name'`` or ``'path/to/file.py:name'`` -> the object (must be callable)."""
    if ':' not in spec:
        raise ValueError(f"{option} {spec!r}: write MODULE:CALLABLE or FILE.py:CALLABLE")
    module_name, attribute = spec.rsplit(':', 1)
    if not module_name or not attribute:
        raise ValueError(f"{option} {spec!r}: write MODULE:CALLABLE or FILE.py:CALLABLE")
    if module_name.endswith('.py') or os.sep in module_name:
        if not os.path.isfile(module_name):
            raise ValueError(f"{option} {spec!r}: no file {module_name!r}")
        name = '_ffcv_doctor_' + os.path.splitext(os.path.basename(module_name))[0]
        module_spec = importlib.util.spec_from_file_location(name, module_name)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ValueError(f"{option} {spec!r}: cannot import {module_name!r} ({e})") from None
    value = module
    for part in attribute.split('.'):
        if not hasattr(value, part):
            raise ValueError(f"{option} {spec!r}: {module_name} has no {attribute!r}")
        value = getattr(value, part)
    if not callable(value):
        raise ValueError(f"{option} {spec!r}: {attribute} is a {type(value).__name__}, "  # noqa: TRY004
                         f"not a callable")
    return value


@dataclass
class PipelineChoice:
    """How the pipelines were given: ``make()`` builds a fresh ``pipelines`` dict for a Loader
    (each loader gets its own operation objects); ``described`` is per output what the
    report shows; ``origin`` says where they came from."""
    make: object
    described: dict
    origin: str


def _field_kind(handler):
    from ffcv_format import FloatField, ImageField, IntField, NDArrayField
    for kind in (ImageField, IntField, FloatField, NDArrayField):
        if isinstance(handler, kind):
            return kind.__name__
    return None


def default_pipelines(handlers):
    """The default pipeline of each field, as data (``handlers``: name -> field); fields not
    listed get the Loader's default decoder."""
    return {name: copy.deepcopy(DEFAULT_OPS[kind]) for name, handler in handlers.items()
            if (kind := _field_kind(handler)) in DEFAULT_OPS}


def _from_data(data, handlers, origin):
    """A PipelineChoice from ``{field: list of items or None}`` (pipelines as data)."""
    from ffcv_ops.pipeline_data import describe_item, pipeline_from_data

    def build_all():
        return {name: (None if items is None else pipeline_from_data(items, name)) for name, items in data.items()}

    build_all()  # fail now, naming the field, rather than inside a measurement
    described = {}
    for name in handlers:
        items = data.get(name, [])
        if items is None:
            described[name] = 'left out'
        else:
            described[name] = ', '.join(describe_item(item) for item in items) or \
                f"(default decoder: {_default_decoder_name(handlers[name])})"
    return PipelineChoice(build_all, described, origin)


def _default_decoder_name(handler):
    from ffcv_ops import default_decoder
    try:
        return type(default_decoder(handler)).__name__
    except TypeError:
        return 'none'


def parse_pipelines(specs, handlers):
    """Read ``--pipeline`` options against a file's fields (``handlers``: name -> field).

    Pipelines are data, never code (``ffcv_ops.pipeline_data``). Each spec is one of:

    - ``FIELD=DATA``: the field's pipeline as a JSON or YAML list of items, each
      ``{"op": NAME, ARGUMENT: VALUE, ...}`` or ``NAME``; ``FIELD=NAME,NAME`` for operations
      without arguments; ``FIELD=None`` (or ``null``) leaves the field out; ``FIELD=`` gives it
      its default decoder. NAMEs are the ``ffcv.ops`` entry points (built-ins and plugins).
    - ``FILE`` (``.json``, ``.yaml``) or JSON/YAML text of a mapping ``{field: [items]}``
      (``--pipelines FILE``); fields it names may not be named again.
    - ``MODULE:FUNCTION`` / ``FILE.py:FUNCTION``, alone: a function returning a ``pipelines``
      dict as the Loader takes it.

    No spec at all: the defaults of :func:`default_pipelines`.

    >>> choice = parse_pipelines(['label=["IntDecoder", "ToTensor"]'], reader.handlers)  # doctest: +SKIP
    >>> loader = Loader(path, 256, pipelines=choice.make())                               # doctest: +SKIP
    """
    specs = list(specs or [])
    if not specs:
        return _from_data(default_pipelines(handlers), handlers, 'default (no --pipeline given)')
    callables = [s for s in specs if _is_callable_spec(s)]
    if callables:
        if len(specs) > 1:
            raise ValueError(f"--pipeline {callables[0]!r}: give either one --pipeline MODULE:FUNCTION "
                             f"or FIELD=... / --pipelines FILE options, not both")
        return _from_callable(callables[0], handlers)
    data, origins = {}, []

    def add(name, items, where):
        if name not in handlers:
            raise ValueError(f"{where}: the file has no field {name!r} (fields: {', '.join(handlers)})")
        if name in data:
            raise ValueError(f"--pipeline: field {name!r} is given twice")
        data[name] = items

    for spec in specs:
        if _is_field_spec(spec):
            name, text = spec.split('=', 1)
            add(name.strip(), _field_pipeline_data(name.strip(), text), f"--pipeline {spec!r}")
            if 'given (--pipeline)' not in origins:
                origins.append('given (--pipeline)')
        else:
            mapping = _mapping_data(spec)
            for name, items in mapping.items():
                add(str(name), items, f"--pipelines {spec!r}")
            origins.append(f"from {spec}" if os.path.isfile(spec) else 'given (--pipelines)')
    return _from_data(data, handlers, ', '.join(origins))


def _mapping_data(spec):
    """The ``{field: [items]}`` of ``--pipelines FILE`` (or of JSON/YAML text)."""
    from ffcv_ops.pipeline_data import read_data
    try:
        mapping = read_data(spec)
    except ValueError as e:
        raise ValueError(f"--pipelines {spec!r}: {e}") from None
    except OSError as e:
        raise ValueError(f"--pipelines {spec!r}: cannot read it ({e})") from None
    if not isinstance(mapping, dict):
        raise ValueError(f"--pipelines {spec!r}: pipelines are a mapping of field name -> list of "  # noqa: TRY004
                         f"operations, got {type(mapping).__name__}")
    for name, items in mapping.items():
        if items is not None and not isinstance(items, list):
            raise ValueError(f"--pipelines {spec!r}: field {name!r}: a pipeline is a list of operations, "
                             f"got {type(items).__name__}")
    return mapping


def _is_field_spec(spec):
    head = spec.split('=', 1)[0]
    return '=' in spec and head.strip().isidentifier()


def _is_callable_spec(spec):
    """``MODULE:FUNCTION`` or ``FILE.py:FUNCTION`` (not FIELD=..., not a data file or text)."""
    if _is_field_spec(spec) or os.path.isfile(spec):
        return False
    stripped = spec.strip()
    if stripped.startswith(('{', '[')) or '\n' in stripped or ': ' in stripped:
        return False
    return ':' in stripped


def _from_callable(spec, handlers):
    function = load_callable(spec, '--pipeline')

    def make():
        pipelines = function()
        if not isinstance(pipelines, dict):
            raise ValueError(f"--pipeline {spec!r} returned a {type(pipelines).__name__}, not a dict "  # noqa: TRY004
                             f"of field name -> list of operations")
        return pipelines

    return _from_mapping(make, handlers, f"from {spec}")


def _from_mapping(make, handlers, origin):
    from ffcv_ops import Operation, PipelineSpec
    first = make()
    described = {}
    for name, value in first.items():
        if name not in handlers and not isinstance(value, PipelineSpec) and value is not None:
            raise ValueError(f"the pipelines name {name!r}, which is not a field of the file "
                             f"(fields: {', '.join(handlers)})")
    for name in list(handlers) + [k for k in first if k not in handlers]:
        value = first.get(name, [])
        if value is None:
            described[name] = 'left out'
        elif isinstance(value, PipelineSpec):
            ops = ([value.decoder] if value.decoder is not None else []) + list(value.transforms)
            described[name] = f"from {value.source}: " + ', '.join(_op_text(op) for op in ops)
        else:
            ops = [value] if isinstance(value, Operation) else list(value)
            described[name] = ', '.join(_op_text(op) for op in ops) or \
                f"(default decoder: {_default_decoder_name(handlers[name])})"
    return PipelineChoice(make, described, origin)


def _op_text(op):
    text = repr(op)
    return text if ' object at 0x' not in text else f"{type(op).__name__}(...)"


def _choice_from_argument(pipelines, handlers):
    """``diagnose``'s ``pipelines``: None, a list of --pipeline specs, a dict, or a callable."""
    if pipelines is None or (isinstance(pipelines, (list, tuple)) and all(isinstance(s, str) for s in pipelines)):
        return parse_pipelines(pipelines, handlers)
    if isinstance(pipelines, str):
        return parse_pipelines([pipelines], handlers)
    if callable(pipelines):
        return _from_mapping(pipelines, handlers, 'given (a function)')
    if isinstance(pipelines, dict):
        original = pipelines

        def make():
            try:
                return copy.deepcopy(original)   # each loader gets its own operation objects
            except (TypeError, copy.Error, RuntimeError):
                return original
        return _from_mapping(make, handlers, 'given (a dict)')
    raise ValueError(f"pipelines must be None, a dict, a function returning one, or --pipeline strings, "
                     f"got {type(pipelines).__name__}")


def crop_size(ops):
    """The output (height, width) of a pipeline's cropping decoder, or None."""
    for op in ops or []:
        size = getattr(op, 'output_size', None)
        if size is not None:
            try:
                return tuple(int(v) for v in size)
            except (TypeError, ValueError):
                return None
    return None


def has_device_copy(pipelines):
    """Whether a ``pipelines`` dict (as the Loader takes it) copies to a CUDA device (``ToDevice``)."""
    from ffcv_ops import PipelineSpec, ToDevice
    for value in pipelines.values():
        ops = ([value.decoder] + list(value.transforms)) if isinstance(value, PipelineSpec) else (value or [])
        if any(isinstance(op, ToDevice) and op.device.type == 'cuda' for op in ops if op is not None):
            return True
    return False
