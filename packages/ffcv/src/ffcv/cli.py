"""The ``ffcv`` command line: a thin dispatcher over subcommands that live in the packages.

Each module named in :data:`COMMAND_MODULES` has ``add_commands(subparsers)``, which adds
argparse subparsers with ``set_defaults(run=function)``; ``function(args)`` returns an
exit code. A failure a user can fix (a missing file, a bad option value, a corrupt
source) ends with one line ``ffcv COMMAND: error: ...`` and exit status 1; Ctrl-C with
status 130. Set ``FFCV_DEBUG=1`` to see the traceback of any failure.

    ffcv convert data/train train.beton --max-resolution 256
    ffcv inspect train.beton --show 16
"""
import argparse
import importlib
import os
import sys

from .__about__ import __version__

#: modules that add subcommands (``add_commands(subparsers)``), in the order of ``--help``
COMMAND_MODULES = ['ffcv_convert.cli', 'ffcv_loader.doctor']

#: exceptions that mean a bug rather than a user's mistake: shown with their traceback
BUG_ERRORS = (AssertionError, AttributeError, NameError, TypeError, RecursionError, SyntaxError)

DESCRIPTION = """\
ffcv: fast data loading for training computer vision models.

Convert a dataset once into a single .beton file, then load it at training time.

examples:
  ffcv convert data/train train.beton --max-resolution 256
  ffcv inspect train.beton --show 16
  ffcv verify train.beton
  ffcv COMMAND --help          (options and examples of a command)
"""


def build_parser():
    """The argparse parser with every command of :data:`COMMAND_MODULES`."""
    parser = argparse.ArgumentParser(prog='ffcv', description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', action='version', version=f'ffcv {__version__}')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', title='commands')
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def _one_line(error):
    text = str(error).strip() or type(error).__name__
    if isinstance(error, OSError) and error.filename and error.strerror and text.startswith('[Errno'):
        text = f"{error.strerror}: {error.filename!r}"
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    return ' '.join(text.split('\n')[0].split()) + (' (...)' if '\n' in text else '')


def main(argv=None):
    """Run the ``ffcv`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"ffcv {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ffcv inspect x | head`
        try:
            sys.stdout = open(os.devnull, 'w')
        except OSError:
            pass
        return 1
    except Exception as error:
        if os.environ.get('FFCV_DEBUG') or isinstance(error, BUG_ERRORS):
            raise
        print(f"ffcv {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 1


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
