"""The dispatcher behind the ``ffcv`` and ``ffcv-convert`` command lines.

A program is a name and a list of *command modules*. Each command module has
``add_commands(subparsers)``, which adds argparse subparsers with
``set_defaults(run=function)``; ``function(args)`` returns an exit status. The dispatcher
parses the arguments, runs the command, and turns failures into what a user of a
command line expects:

- a failure a user can fix (a missing file, a bad option value, a corrupt source) ends
  with one line ``PROG COMMAND: error: ...`` on stderr and exit status 1;
- Ctrl-C ends with ``PROG COMMAND: interrupted`` and status 130;
- a closed pipe (``PROG inspect x | head``) ends quietly with status 1;
- exceptions that mean a bug (:data:`BUG_ERRORS`) keep their traceback, and so does
  every failure when the environment variable ``FFCV_DEBUG`` is set.

>>> import sys
>>> status = run_command_line('ffcv-convert', ['ffcv_convert.cli'], ['verify', 'train.beton'],
...                           description='...', version='ffcv-convert 2.0')  # doctest: +SKIP
>>> sys.exit(status)                                                             # doctest: +SKIP

Nothing here imports torch, numba or the loader: the modules a program names decide what
is imported.
"""
import argparse
import importlib
import os
import sys
from collections.abc import Sequence

__all__ = ['BUG_ERRORS', 'build_parser', 'one_line_message', 'run_command_line']

#: exceptions that mean a bug rather than a user's mistake: shown with their traceback
BUG_ERRORS = (AssertionError, AttributeError, NameError, TypeError, RecursionError, SyntaxError)


def build_parser(prog: str, command_modules: Sequence[str], *, description: str,
                 version: str) -> argparse.ArgumentParser:
    """The parser of program ``prog`` with the subcommands of every module in ``command_modules``.

    ``command_modules`` are import names (e.g. ``'ffcv_convert.cli'``), imported here in
    the order given, which is the order of the commands in ``--help``. ``version`` is what
    ``--version`` prints. Each subcommand's help and messages name ``PROG COMMAND``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', action='version', version=version)
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', title='commands')
    for module_name in command_modules:
        module = importlib.import_module(module_name)
        add_commands = getattr(module, 'add_commands', None)
        if add_commands is None:
            raise AttributeError(f"command module {module_name!r} has no add_commands(subparsers) function")
        add_commands(subparsers)
    return parser


def one_line_message(error: BaseException) -> str:
    """The first line of ``error``'s message, as the dispatcher prints it.

    An ``OSError`` reads ``reason: 'path'`` rather than ``[Errno 2] ...``; a ``KeyError``
    reads its key without quotes; a message of several lines is cut to its first,
    followed by ``(...)``.

    >>> one_line_message(FileNotFoundError(2, 'No such file or directory', 'x.beton'))
    "No such file or directory: 'x.beton'"
    """
    text = str(error).strip() or type(error).__name__
    if isinstance(error, OSError) and error.filename and error.strerror and text.startswith('[Errno'):
        text = f"{error.strerror}: {error.filename!r}"
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    first_line = ' '.join(text.split('\n')[0].split())
    return first_line + (' (...)' if '\n' in text else '')


def run_command_line(prog: str, command_modules: Sequence[str], argv: Sequence[str] | None = None, *,
                     description: str, version: str) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return the exit status.

    Without a command, the help goes to stderr and the status is 2 (argparse's status
    for a usage error). See the module's docstring for how failures end.
    """
    parser = build_parser(prog, command_modules, description=description, version=version)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    command = f"{prog} {args.command}"
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away: silence the flush at exit that would fail again
        try:
            sys.stdout = open(os.devnull, 'w')
        except OSError:
            pass
        return 1
    except Exception as error:
        if os.environ.get('FFCV_DEBUG') or isinstance(error, BUG_ERRORS):
            raise
        print(f"{command}: error: {one_line_message(error)}", file=sys.stderr)
        return 1
