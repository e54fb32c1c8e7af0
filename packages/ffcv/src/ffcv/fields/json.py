"""FFCV 1.0's ``ffcv.fields.json``."""
from ffcv_format import JSONField

#: how a JSON document is stored: its UTF-8 text, then a zero byte
ENCODING = 'utf8'
SEPARATOR = '\0'

__all__ = ['JSONField', 'ENCODING', 'SEPARATOR']
