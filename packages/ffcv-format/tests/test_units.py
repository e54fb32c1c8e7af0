"""Sizes and counts as written on a command line."""
import argparse

import pytest

from ffcv_format.units import human_size, parse_size, positive_int_argument, size_argument


@pytest.mark.parametrize('text,expected', [('8MiB', 8 << 20), ('8M', 8 << 20), ('8mb', 8 << 20), ('4g', 4 << 30),
                                           ('1.5KiB', 1536), ('2097152', 2097152), (' 2T ', 2 << 40), ('0', 0)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize('text', ['', 'lots', '8 parsecs', 'MiB', '-3M'])
def test_parse_size_refuses_what_is_not_a_size(text):
    with pytest.raises(ValueError, match=repr(text)):
        parse_size(text)


@pytest.mark.parametrize('nbytes,text', [(0, '0 B'), (1023, '1023 B'), (1536, '1.5 KiB'), (8 << 20, '8.0 MiB'),
                                         (3 << 40, '3.0 TiB'), (5000 << 40, '5000.0 TiB')])
def test_human_size(nbytes, text):
    assert human_size(nbytes) == text


def test_argparse_types_give_argparse_errors():
    parser = argparse.ArgumentParser(prog='x', exit_on_error=False)
    parser.add_argument('--size', type=size_argument)
    parser.add_argument('--n', type=positive_int_argument)
    args = parser.parse_args(['--size', '4MiB', '--n', '3'])
    assert (args.size, args.n) == (4 << 20, 3)
    for argv, message in ((['--size', 'big'], "cannot read size 'big'"), (['--n', '0'], 'positive integer'),
                          (['--n', 'x'], 'positive integer')):
        with pytest.raises(argparse.ArgumentError, match=message):
            parser.parse_args(argv)
