"""The ``ffcv`` command line: the subcommands of the modules in :data:`COMMAND_MODULES`.

Each of those modules has ``add_commands(subparsers)`` (see :mod:`ffcv_convert.cli`); the
dispatcher is :func:`ffcv_convert.command_line.run_command_line`, shared with the
``ffcv-convert`` program: a failure a user can fix ends with one line
``ffcv COMMAND: error: ...`` and exit status 1, Ctrl-C with status 130, and
``FFCV_DEBUG=1`` shows the traceback of any failure.

    ffcv convert data/train train.beton --max-resolution 256
    ffcv inspect train.beton --show 16
"""
import argparse
import sys

from ffcv_convert import command_line

from .__about__ import __version__

#: modules that add subcommands (``add_commands(subparsers)``), in the order of ``--help``
COMMAND_MODULES = ['ffcv_convert.cli', 'ffcv_loader.doctor', 'ffcv.demo']

DESCRIPTION = """\
ffcv: fast data loading for training computer vision models.

Convert a dataset once into a single .beton file, then load it at training time.

examples:
  ffcv demo                    (convert, train and compare on scikit-learn's digits)
  ffcv convert data/train train.beton --max-resolution 256
  ffcv inspect train.beton --show 16
  ffcv verify train.beton
  ffcv COMMAND --help          (options and examples of a command)
"""


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every command of :data:`COMMAND_MODULES`."""
    return command_line.build_parser('ffcv', COMMAND_MODULES, description=DESCRIPTION,
                                     version=f'ffcv {__version__}')


def main(argv: list[str] | None = None) -> int:
    """Run the ``ffcv`` command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    return command_line.run_command_line('ffcv', COMMAND_MODULES, argv, description=DESCRIPTION,
                                         version=f'ffcv {__version__}')


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
