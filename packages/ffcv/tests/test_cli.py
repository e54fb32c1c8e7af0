"""The `ffcv` console script, run in a subprocess as a user would."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ffcv_convert.testing import count_tiles, http_server, truncate_file, write_image_folder
from ffcv_format import Reader

FFCV = os.path.join(os.path.dirname(sys.executable), 'ffcv')
COMMANDS = ['convert', 'inspect', 'verify', 'concat', 'subset', 'append']


def ffcv(*args, cwd=None, check=None):
    result = subprocess.run([FFCV, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)
    if check is not None:
        assert result.returncode == check, (result.stdout, result.stderr)
    return result


def assert_one_line_error(result, command, *fragments):
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert 'Traceback' not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f'ffcv {command}: error: ')]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp('cli')
    entries = write_image_folder(root / 'train', 20, classes=4, seed=21)
    return root / 'train', entries


@pytest.fixture(scope='module')
def converted(folder, tmp_path_factory):
    root, _ = folder
    dst = tmp_path_factory.mktemp('converted') / 'train.beton'
    result = ffcv('convert', root, dst, '--max-resolution', 48, '--jpeg-quality', 85, '--part-size', 6,
                  '--workers', 2, check=0)
    assert f'wrote {dst}: 20 samples, fields image, label' in result.stdout
    return dst


def test_console_script_is_installed_next_to_python():
    assert os.access(FFCV, os.X_OK), FFCV
    result = ffcv('--version', check=0)
    assert result.stdout.startswith('ffcv 2.')
    module = subprocess.run([sys.executable, '-m', 'ffcv', '--help'], capture_output=True, text=True)
    assert module.returncode == 0 and 'commands:' in module.stdout


def test_help_lists_commands_and_each_has_examples():
    result = ffcv('--help', check=0)
    for command in COMMANDS:
        assert f'\n    {command} ' in result.stdout
    for command in COMMANDS:
        help_text = ffcv(command, '--help', check=0).stdout
        assert help_text.startswith(f'usage: ffcv {command}')
        assert 'examples:\n' in help_text and f'  ffcv {command} ' in help_text
    convert_help = ffcv('convert', '--help', check=0).stdout
    for option in ('--fields', '--max-resolution', '--write-mode', '--jpeg-quality', '--workers',
                   '--skip-bad', '--keep-jpeg', '--restart'):
        assert option in convert_help
    assert ffcv(check=2).stderr.startswith('usage: ffcv')


def test_convert_result_matches_the_source(folder, converted):
    import cv2
    from ffcv_convert import decode_image
    _, entries = folder
    reader = Reader(converted)
    assert reader.num_samples == 20
    for k, (path, label) in enumerate(entries):
        image, stored_label = reader[k]
        with open(path, 'rb') as f:
            original = decode_image(f.read())
        assert stored_label == label and max(image.shape[:2]) == min(48, max(original.shape[:2]))
        reference = cv2.resize(original, image.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(image.astype(int) - reference).mean() < 8


def test_inspect_and_contact_sheet(converted, tmp_path):
    result = ffcv('inspect', converted, check=0)
    assert f'{converted}: 20 samples, 2 field(s)' in result.stdout
    assert 'images: jpeg 20' in result.stdout and 'values 0 .. 3, 4 distinct' in result.stdout
    assert 'pages: 1 of 8.0 MiB' in result.stdout
    sheet = tmp_path / 'sheet.png'
    result = ffcv('inspect', converted, '--show', 7, '--output', sheet, check=0)
    assert 'contact sheet: 7 samples' in result.stdout
    assert count_tiles(sheet) == 7
    ffcv('inspect', converted, '--show', 12, cwd=tmp_path, check=0)
    assert count_tiles(tmp_path / 'train.contact.png') == 12
    result = ffcv('inspect', converted, '--json', check=0)
    assert '"num_samples": 20' in result.stdout


def test_verify(converted, tmp_path):
    assert 'OK, 20 samples' in ffcv('verify', converted, check=0).stdout
    damaged = tmp_path / 'damaged.beton'
    data = bytearray(converted.read_bytes())
    damaged.write_bytes(bytes(data[:len(data) - 10]))  # allocation table cut short
    result = ffcv('verify', damaged, check=1)
    assert 'ffcv verify:' in result.stderr and 'Traceback' not in result.stderr


def test_concat_subset_append(converted, tmp_path):
    ffcv('concat', converted, converted, '-o', tmp_path / 'double.beton', check=0)
    ffcv('subset', tmp_path / 'double.beton', tmp_path / 'sub.beton', '--indices', '19:22,0', check=0)
    (tmp_path / 'keep.txt').write_text('3\n1  # comment\n')
    ffcv('subset', converted, tmp_path / 'sub2.beton', '--indices-file', tmp_path / 'keep.txt', check=0)
    result = ffcv('append', tmp_path / 'sub.beton', tmp_path / 'sub2.beton', '-o', tmp_path / 'app.beton',
                  check=0)
    assert 'wrote' in result.stdout and '6 samples' in result.stdout
    original = Reader(converted)
    out = Reader(tmp_path / 'app.beton')
    for j, i in enumerate([19, 0, 1, 0, 3, 1]):
        np.testing.assert_array_equal(out[j][0], original[i][0])
        assert out[j][1] == original[i][1]


def test_user_errors_end_with_one_line(folder, converted, tmp_path):
    root, _ = folder
    assert_one_line_error(ffcv('convert', tmp_path / 'nope', tmp_path / 'x.beton'), 'convert',
                          'nope', 'does not exist')
    # an existing output: refused, and the message names the flag, not the Python argument
    for command, args in [('convert', [root, converted]), ('concat', [converted, converted, '-o', converted]),
                          ('subset', [converted, converted, '--indices', '0:3']),
                          ('append', [converted, converted, '-o', converted])]:
        before = converted.read_bytes()
        result = ffcv(command, *args)
        assert_one_line_error(result, command, 'already exists', 'add --overwrite to replace it')
        assert 'overwrite=True' not in result.stderr
        assert converted.read_bytes() == before
    assert_one_line_error(ffcv('convert', root, tmp_path / 'y.beton', '--fields', 'image=image:picture'),
                          'convert', "unknown type 'picture'")
    assert_one_line_error(ffcv('subset', converted, tmp_path / 's.beton', '--indices', '5,20'), 'subset',
                          'index 20 is out of range', '20 samples')
    ffcv('convert', root, tmp_path / 'three.beton', '--fields', 'image,label,class:str', '-q', check=0)
    assert_one_line_error(ffcv('concat', converted, tmp_path / 'three.beton', '-o', tmp_path / 'c.beton'),
                          'concat', 'fields differ', 'class (JSONField)')
    assert_one_line_error(ffcv('inspect', tmp_path / 'missing.beton'), 'inspect', 'missing.beton')
    bad_option = ffcv('convert', root, tmp_path / 'z.beton', '--write-mode', 'gif', check=2)
    assert "invalid choice: 'gif'" in bad_option.stderr


def test_bad_images_stop_or_are_skipped(folder, tmp_path):
    import shutil
    root, entries = folder
    copy = tmp_path / 'train'
    shutil.copytree(root, copy)
    bad = copy / os.path.relpath(entries[5][0], root)
    truncate_file(bad, 0.4)
    dst = tmp_path / 'out.beton'
    result = ffcv('convert', copy, dst, '-q')
    assert_one_line_error(result, 'convert', str(bad), 'truncated JPEG', '--skip-bad')
    assert not dst.exists()
    result = ffcv('convert', copy, dst, '-q', '--skip-bad', check=0)
    assert '19 samples' in result.stdout and '1 skipped' in result.stdout
    report = (tmp_path / 'out.beton.skipped.txt').read_text()
    assert f'{bad}\ttruncated JPEG' in report


def test_ctrl_c_then_the_same_command_resumes(folder, tmp_path):
    root, _ = folder
    args = ['--part-size', 2, '--io-workers', 1, '--workers', 1, '-q']
    with http_server(root.parent, delay=0.05) as url:
        source = f'{url}/train/'
        ffcv('convert', source, tmp_path / 'reference.beton', *args, check=0)
        dst = tmp_path / 'out.beton'
        work = str(dst) + '.parts'
        process = subprocess.Popen([FFCV, 'convert', source, str(dst), *map(str, args)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (os.path.isdir(work) and sum(n.endswith('.beton') for n in os.listdir(work)) >= 2):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert 'Traceback' not in err and 'run the same command again to resume' in err
        assert not dst.exists()
        result = ffcv('convert', source, dst, *args, check=0)
    assert 'parts reused' in result.stdout
    assert dst.read_bytes() == (tmp_path / 'reference.beton').read_bytes()
