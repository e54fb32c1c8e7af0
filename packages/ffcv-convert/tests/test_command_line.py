"""The ``ffcv-convert`` program and the dispatcher it shares with ``ffcv``
(:mod:`ffcv_convert.command_line`): run in a subprocess as a user would, and in-process
for the dispatcher's handling of failures."""
import os
import subprocess
import sys
import types

import pytest
from ffcv_convert import __version__
from ffcv_convert.command_line import one_line_message, run_command_line
from ffcv_convert.testing import write_image_folder

FFCV_CONVERT = os.path.join(os.path.dirname(sys.executable), 'ffcv-convert')
COMMANDS = ['convert', 'inspect', 'verify', 'concat', 'subset', 'append']


def ffcv_convert(*args, check=None):
    result = subprocess.run([FFCV_CONVERT, *map(str, args)], capture_output=True, text=True, timeout=300,
                            check=False)
    if check is not None:
        assert result.returncode == check, (result.stdout, result.stderr)
    return result


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp('command_line')
    write_image_folder(root / 'train', 6, classes=2, seed=4)
    dst = root / 'train.beton'
    result = ffcv_convert('convert', root / 'train', dst, '--max-resolution', 32, '--workers', 2, '-q', check=0)
    assert f'wrote {dst}: 6 samples, fields image, label' in result.stdout
    return dst


def test_console_script_and_module_name_the_program():
    assert os.access(FFCV_CONVERT, os.X_OK), f"{FFCV_CONVERT} is not installed (pip install -e packages/ffcv-convert)"
    assert ffcv_convert('--version', check=0).stdout.strip() == f'ffcv-convert {__version__}'
    top = ffcv_convert('--help', check=0).stdout
    assert top.startswith('usage: ffcv-convert ')
    for command in COMMANDS:
        assert f'\n    {command} ' in top
        help_text = ffcv_convert(command, '--help', check=0).stdout
        assert help_text.startswith(f'usage: ffcv-convert {command}')
        assert f'examples:\n  ffcv-convert {command} ' in help_text
        assert 'ffcv ' + command not in help_text
    assert 'doctor' not in top   # the loader's command belongs to `ffcv`
    module = subprocess.run([sys.executable, '-m', 'ffcv_convert', '--help'], capture_output=True, text=True,
                            check=False)
    assert module.returncode == 0 and module.stdout == top
    assert ffcv_convert(check=2).stderr.startswith('usage: ffcv-convert')


def test_commands_work_and_messages_name_ffcv_convert(converted, tmp_path):
    assert 'OK, 6 samples' in ffcv_convert('verify', converted, check=0).stdout
    assert f'{converted}: 6 samples' in ffcv_convert('inspect', converted, check=0).stdout
    ffcv_convert('subset', converted, tmp_path / 'two.beton', '--indices', '0,5', check=0)
    result = ffcv_convert('concat', converted, tmp_path / 'two.beton', '-o', tmp_path / 'eight.beton', check=0)
    assert '8 samples' in result.stdout

    result = ffcv_convert('convert', tmp_path / 'nope', tmp_path / 'x.beton', check=1)
    assert result.stderr.startswith('ffcv-convert convert: error: ') and 'nope' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = ffcv_convert('concat', converted, converted, '-o', converted, check=1)
    assert result.stderr.startswith('ffcv-convert concat: error: ') and 'add --overwrite' in result.stderr
    # a message the command prints itself names the program too
    damaged = tmp_path / 'damaged.beton'
    damaged.write_bytes(converted.read_bytes()[:-10])
    result = ffcv_convert('verify', damaged, check=1)
    assert result.stderr.startswith('ffcv-convert verify: ') and 'Traceback' not in result.stderr


def test_the_command_line_imports_neither_torch_nor_the_loader(converted, tmp_path):
    # torch is installed in the test environment: nothing on the path of a command may import it
    code = ("import sys; from ffcv_convert.cli import main; "
            "status = main(['convert', sys.argv[1], sys.argv[2], '-q', '--workers', '2']); "
            "status += main(['inspect', sys.argv[2]]) + main(['verify', sys.argv[2]]); "
            "loaded = sorted({'torch', 'numba', 'ffcv_ops', 'ffcv_loader', 'ffcv'} & set(sys.modules)); "
            "assert status == 0 and not loaded, (status, loaded)")
    source = tmp_path / 'train'
    write_image_folder(source, 4, classes=2, seed=9)
    result = subprocess.run([sys.executable, '-c', code, str(source), str(tmp_path / 'out.beton')],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- the dispatcher, in-process

@pytest.fixture
def command_module(monkeypatch):
    """An importable command module with ``fail`` (raises what ``--error`` names) and ``ok``."""
    errors = {'value': ValueError('bad value\nsecond line'), 'interrupt': KeyboardInterrupt(),
              'bug': TypeError('a bug'), 'missing': FileNotFoundError(2, 'No such file or directory', 'x.beton')}

    def fail(args):
        raise errors[args.error]

    def add_commands(subparsers):
        p = subparsers.add_parser('fail')
        p.add_argument('error', choices=sorted(errors))
        p.set_defaults(run=fail)
        subparsers.add_parser('ok').set_defaults(run=lambda args: None)

    module = types.ModuleType('fake_commands')
    module.add_commands = add_commands
    monkeypatch.setitem(sys.modules, 'fake_commands', module)
    monkeypatch.delenv('FFCV_DEBUG', raising=False)
    return 'fake_commands'


def dispatch(module, *argv):
    return run_command_line('tool', [module], list(argv), description='a tool', version='tool 1.0')


def test_dispatcher_exit_statuses_and_one_line_errors(command_module, capsys, monkeypatch):
    assert dispatch(command_module, 'ok') == 0
    assert dispatch(command_module, 'fail', 'value') == 1
    assert capsys.readouterr().err == 'tool fail: error: bad value (...)\n'
    assert dispatch(command_module, 'fail', 'missing') == 1
    assert capsys.readouterr().err == "tool fail: error: No such file or directory: 'x.beton'\n"
    assert dispatch(command_module, 'fail', 'interrupt') == 130
    assert capsys.readouterr().err == 'tool fail: interrupted\n'
    with pytest.raises(TypeError, match='a bug'):
        dispatch(command_module, 'fail', 'bug')
    monkeypatch.setenv('FFCV_DEBUG', '1')
    with pytest.raises(ValueError, match='bad value'):
        dispatch(command_module, 'fail', 'value')
    assert dispatch(command_module) == 2
    assert capsys.readouterr().err.startswith('usage: tool ')
    with pytest.raises(SystemExit) as exit_info:
        dispatch(command_module, '--version')
    assert exit_info.value.code == 0 and capsys.readouterr().out == 'tool 1.0\n'


def test_a_module_without_add_commands_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, 'not_commands', types.ModuleType('not_commands'))
    with pytest.raises(AttributeError, match="command module 'not_commands' has no add_commands"):
        dispatch('not_commands', 'ok')


def test_one_line_message():
    assert one_line_message(KeyError('field image')) == 'field image'
    assert one_line_message(RuntimeError()) == 'RuntimeError'
    assert one_line_message(ValueError('  spaced   out\n more')) == 'spaced out (...)'
