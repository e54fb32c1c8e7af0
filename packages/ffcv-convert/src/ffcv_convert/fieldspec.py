"""Which source values become which fields: ``NAME=KEY:TYPE`` specs and value conversion.

A record from a source is a dict (an image folder gives ``image``, ``label``, ``class``
and ``path``; a manifest gives its columns; a WebDataset sample gives its extensions
such as ``jpg`` and ``cls``). Each field of the output file takes one key of the record
and converts its value for the field: ``'3'`` or ``b'3'`` for an ``IntField`` is 3.
"""
import json
import re

from ffcv_format import BytesField, Field, FloatField, ImageField, IntField, JSONField

from .errors import BadSampleError
from .images import EncodedImage, SourceImageField

__all__ = ['FieldSpec', 'parse_field_specs', 'TYPES']

#: the TYPE names of ``NAME=KEY:TYPE`` specs
TYPES = ('image', 'int', 'float', 'str', 'json', 'bytes')
_SPEC = re.compile(r'^([^=:\s]+)(?:=([^:]+))?(?::([a-z]+))?$')


def _text(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode('utf-8').strip()
    if isinstance(value, EncodedImage):
        return value.data.decode('utf-8').strip()
    return value


def to_int(value):
    value = _text(value)
    if isinstance(value, str):
        return int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    return int(value)


def to_float(value):
    return float(_text(value))


def to_str(value):
    value = _text(value)
    return value if isinstance(value, str) else str(value)


def to_json(value):
    value = _text(value)
    return json.loads(value) if isinstance(value, str) else value


def to_bytes(value):
    if isinstance(value, EncodedImage):
        return value.data
    if isinstance(value, str):
        return value.encode('utf-8')
    return value


def to_image(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return EncodedImage(value)
    return value


def _identity(value):
    return value


_CONVERTERS = {IntField: to_int, FloatField: to_float, JSONField: to_json, BytesField: to_bytes}


class FieldSpec:
    """One field of the output: its ``name``, the record ``key`` it takes, and the ``field``.

    >>> FieldSpec('label', IntField(), key='cls')
    FieldSpec('label' <- 'cls', IntField())
    """

    def __init__(self, name, field, key=None, convert=None):
        if not isinstance(field, Field):
            raise TypeError(f"field {name!r} must be a Field instance (e.g. IntField()), got {field!r:.80}")
        self.name = name
        self.key = name if key is None else key
        if isinstance(field, ImageField) and not isinstance(field, SourceImageField):
            field = SourceImageField.like(field)
        self.field = field
        if convert is None:
            convert = to_image if isinstance(field, ImageField) else _CONVERTERS.get(type(field), _identity)
        self.convert = convert

    @property
    def is_image(self):
        return isinstance(self.field, SourceImageField)

    def value(self, record, where):
        """This field's value from a record (a dict), converted; BadSampleError if it cannot be."""
        try:
            raw = record[self.key]
        except KeyError:
            raise BadSampleError(f"has no {self.key!r} (for field {self.name!r}); it has "
                                 f"{', '.join(map(repr, record)) or 'nothing'}", where) from None
        try:
            return self.convert(raw)
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            raise BadSampleError(f"{self.key!r} = {str(raw)[:40]!r} does not convert for field "
                                 f"{self.name!r} ({type(self.field).__name__}): {e}", where) from None

    def describe(self):
        """A JSON-able description of what this field stores (for resume checks)."""
        settings = self.field.settings() if self.is_image else repr(self.field)
        return {'name': self.name, 'key': self.key, 'type': type(self.field).__name__,
                'type_id': int(self.field.type_id), 'settings': settings}

    def __repr__(self):
        return f"FieldSpec({self.name!r} <- {self.key!r}, {self.field!r})"


def make_field(type_name, image_options):
    """The field for a TYPE name of a ``NAME=KEY:TYPE`` spec."""
    if type_name == 'image':
        return SourceImageField(**image_options)
    if type_name == 'int':
        return IntField()
    if type_name == 'float':
        return FloatField()
    if type_name in ('str', 'json'):
        return JSONField()
    if type_name == 'bytes':
        return BytesField()
    raise ValueError(f"unknown field type {type_name!r}; use one of {', '.join(TYPES)}")


def parse_field_specs(specs, image_options=None, default_types=None):
    """Field specs from ``NAME=KEY:TYPE`` strings (``=KEY`` and ``:TYPE`` are optional).

    >>> parse_field_specs(['image=jpg:image', 'label=cls:int'])
    [FieldSpec('image' <- 'jpg', SourceImageField(...)), FieldSpec('label' <- 'cls', IntField())]

    A spec may hold several, separated by commas. Without ``:TYPE`` the type comes from
    ``default_types`` (by key, then by name) or is ``image`` for image-like keys
    (``image``, ``jpg``, ``png``...), ``int`` for ``label``/``cls``, ``json`` otherwise.
    """
    image_options = dict(image_options or {})
    default_types = dict(default_types or {})
    if isinstance(specs, str):
        specs = [specs]
    result = []
    for group in specs:
        for text in str(group).split(','):
            text = text.strip()
            if not text:
                continue
            match = _SPEC.match(text)
            if not match:
                raise ValueError(f"cannot read field spec {text!r}; write NAME, NAME=KEY or "
                                 f"NAME=KEY:TYPE with TYPE one of {', '.join(TYPES)} "
                                 "(e.g. image=jpg:image,label=cls:int)")
            name, key, type_name = match.group(1), match.group(2) or match.group(1), match.group(3)
            if type_name is None:
                type_name = default_types.get(key) or default_types.get(name) or _guess_type(key)
            if type_name not in TYPES:
                raise ValueError(f"field spec {text!r}: unknown type {type_name!r}; use one of "
                                 f"{', '.join(TYPES)}")
            if any(spec.name == name for spec in result):
                raise ValueError(f"field {name!r} is given twice in {specs}")
            field = make_field(type_name, image_options)
            convert = {'str': to_str}.get(type_name)
            result.append(FieldSpec(name, field, key=key, convert=convert))
    if not result:
        raise ValueError("no fields given; write e.g. --fields image=jpg:image,label=cls:int")
    return result


_IMAGE_KEYS = ('image', 'img', 'jpg', 'jpeg', 'png', 'webp', 'ppm', 'bmp', 'tif', 'tiff', 'pgm')
_INT_KEYS = ('label', 'cls', 'class_index', 'target', 'index')


def _guess_type(key):
    key = key.lower()
    for candidate in (key, key.split('.', 1)[0], key.rsplit('.', 1)[-1]):
        if candidate in _IMAGE_KEYS:
            return 'image'
        if candidate in _INT_KEYS:
            return 'int'
    if key.endswith('txt') or key in ('class', 'path', 'caption', 'text'):
        return 'str'
    return 'json'
