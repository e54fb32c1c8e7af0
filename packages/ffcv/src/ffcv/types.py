"""FFCV 1.0's ``ffcv.types``: the fixed structures of a ``.beton`` file and the field types.

The layout is specified in docs/format.md; the structures are ``ffcv_format.spec``'s.
"""
from typing import List

import numpy as np
from ffcv_format import TYPE_ID_HANDLER as _HANDLERS
from ffcv_format.spec import ALLOC_TABLE_TYPE, CURRENT_VERSION, CUSTOM_TYPE_ID
from ffcv_format.spec import FIELD_DESC_TYPE as FieldDescType
from ffcv_format.spec import HEADER_TYPE as HeaderType
from ffcv_format.spec import metadata_type

#: type id -> field class; 255 (a field defined by the application) maps to None
TYPE_ID_HANDLER = {CUSTOM_TYPE_ID: None, **_HANDLERS}


def get_handlers(field_descriptors) -> list:
    """The field object of each descriptor (None for application-defined fields)."""
    handlers = []
    for descriptor in field_descriptors:
        handler = TYPE_ID_HANDLER[int(descriptor['type_id'])]
        handlers.append(None if handler is None else handler.from_binary(descriptor['arguments']))
    return handlers


def get_metadata_type(handlers: List) -> np.dtype:
    """The dtype of a metadata row of fields ``handlers`` (members ``f0``, ``f1``, ...)."""
    return metadata_type([handler.metadata_type for handler in handlers])


__all__ = ['CURRENT_VERSION', 'HeaderType', 'ALLOC_TABLE_TYPE', 'FieldDescType', 'TYPE_ID_HANDLER',
           'get_handlers', 'get_metadata_type']
