"""The packages as users get them: wheels built by scripts/build_wheels.py, each installed by
name into a fresh virtual environment, its siblings found among the built wheels and its
other dependencies on the package index.

What a development environment hides is what these tests catch: a dependency missing from a
package's metadata, a sibling version range that installers refuse (the versions are
pre-releases), a console script not declared, or ``ffcv-convert`` importing torch.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ffcv_convert.testing import write_image_folder
from ffcv_format import DatasetWriter, IntField, Reader, RGBImageField

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGES = ['ffcv-format', 'ffcv-ops', 'ffcv-loader', 'ffcv-convert', 'ffcv']
#: installing into a fresh environment fetches numpy and OpenCV (from a cache after the first run)
INSTALL_TIMEOUT = 600


def tree_version(package):
    """The version in ``packages/<package>/src/<module>/__about__.py``."""
    about = REPOSITORY / 'packages' / package / 'src' / package.replace('-', '_') / '__about__.py'
    return re.search(r'__version__ = "([^"]+)"', about.read_text()).group(1)


def clean_environment():
    """The environment for commands run in a test venv: nothing that points Python at this one."""
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV')}
    env['PYTHONNOUSERSITE'] = '1'
    return env


def run(command, timeout=300, cwd=None, check=0):
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout,
                            env=clean_environment(), cwd=cwd, check=False)
    if check is not None:
        assert result.returncode == check, (command, result.stdout[-3000:], result.stderr[-3000:])
    return result


def find_uv():
    """uv as declared in hatch.toml (the `uv` package's executable), else the one on the PATH."""
    try:
        import uv
        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which('uv')
        if found is None:
            pytest.fail("uv is not installed: the ffcv test environment declares it (hatch.toml); "
                        "pip install uv")
        return found


def installed_distributions(python):
    """``{name: version}`` of every distribution installed in the environment of ``python``."""
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version "
            "for d in m.distributions()}))")
    return json.loads(run([python, '-c', code]).stdout)


def assert_cannot_import(python, *modules):
    for module in modules:
        result = run([python, '-c', f'import {module}'], check=1)
        assert f"No module named '{module}'" in result.stderr, result.stderr


@pytest.fixture(scope='module')
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    result = run([sys.executable, REPOSITORY / 'scripts' / 'build_wheels.py', '--out', out], timeout=600)
    built = sorted(path.name for path in out.glob('*.whl'))
    expected = sorted(f"{p.replace('-', '_')}-{tree_version(p)}-py3-none-any.whl" for p in PACKAGES)
    assert built == expected, result.stdout
    return out


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    """Seven JPEG and three PNG files in three class folders; ``(root, [(path, label), ...])``."""
    root = tmp_path_factory.mktemp('images') / 'train'
    write_image_folder(root, 7, classes=3, seed=5, extension='.jpg')
    write_image_folder(root, 3, classes=3, seed=6, extension='.png')
    entries = sorted(((str(path), ord(path.parent.name[-1]) - ord('a')) for path in root.glob('*/*')),
                     key=lambda e: (e[1], os.path.relpath(e[0], root)))
    assert len(entries) == 10 and {label for _, label in entries} == {0, 1, 2}
    return root, entries


def test_ffcv_convert_alone_installs_without_torch_and_converts(wheels, image_folder, tmp_path):
    root, entries = image_folder
    venv = tmp_path / 'venv'
    run([sys.executable, '-m', 'venv', venv])
    python = venv / 'bin' / 'python'
    # the README's command, with pip and without --pre: the siblings are pre-releases
    run([python, '-m', 'pip', 'install', '--quiet', '--find-links', wheels, 'ffcv-convert'],
        timeout=INSTALL_TIMEOUT)
    installed = installed_distributions(python)
    assert installed['ffcv-convert'] == tree_version('ffcv-convert')
    assert installed['ffcv-format'] == tree_version('ffcv-format')
    for absent in ('ffcv-ops', 'ffcv-loader', 'ffcv', 'torch', 'numba'):
        assert absent not in installed, sorted(installed)
    assert_cannot_import(python, 'torch', 'ffcv_ops', 'ffcv_loader')

    ffcv_convert = venv / 'bin' / 'ffcv-convert'
    assert run([ffcv_convert, '--version']).stdout.strip() == f"ffcv-convert {tree_version('ffcv-convert')}"
    dst = tmp_path / 'train.beton'
    result = run([ffcv_convert, 'convert', root, dst, '--max-resolution', 32, '--workers', 2, '-q'],
                 cwd=tmp_path)
    assert f'wrote {dst}: 10 samples, fields image, label' in result.stdout

    summary = json.loads(run([ffcv_convert, 'inspect', dst, '--json']).stdout)
    assert summary['num_samples'] == 10
    assert 'OK, 10 samples' in run([python, '-m', 'ffcv_convert', 'verify', dst]).stdout

    shapes_and_labels = ("import json, sys; from ffcv_format import Reader; r = Reader(sys.argv[1]); "
                         "print(json.dumps([[list(r[i][0].shape), int(r[i][1])] "
                         "for i in range(r.num_samples)]))")
    read_back = run([python, '-c', shapes_and_labels, dst])
    samples = json.loads(read_back.stdout)
    assert [label for _, label in samples] == [label for _, label in entries]
    assert all(max(shape[:2]) <= 32 and shape[2] == 3 for shape, _ in samples)

    # a failure is one line naming this program, not `ffcv`
    result = run([ffcv_convert, 'convert', tmp_path / 'missing', tmp_path / 'x.beton'], check=1)
    assert result.stderr.startswith('ffcv-convert convert: error: ') and 'missing' in result.stderr
    assert 'Traceback' not in result.stderr


def test_ffcv_format_alone_reads_a_file(wheels, tmp_path):
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8) for i in range(6)]
    written = tmp_path / 'raw.beton'
    DatasetWriter(str(written), {'image': RGBImageField(write_mode='raw'), 'label': IntField()},
                  num_workers=1).from_indexed_dataset([(image, 10 * i) for i, image in enumerate(images)])
    assert Reader(str(written)).num_samples == 6

    uv = find_uv()
    venv = tmp_path / 'venv'
    run([uv, 'venv', '--quiet', '--python', sys.executable, venv])
    python = venv / 'bin' / 'python'
    # with uv (hatch's installer) and without --prerelease: ffcv-format's only version is a pre-release
    run([uv, 'pip', 'install', '--quiet', '--python', python, '--find-links', wheels, 'ffcv-format'],
        timeout=INSTALL_TIMEOUT)
    installed = installed_distributions(python)
    assert installed['ffcv-format'] == tree_version('ffcv-format')
    assert not {'ffcv-convert', 'ffcv-ops', 'ffcv-loader', 'torch'} & set(installed), sorted(installed)

    samples_as_json = ("import json, sys; from ffcv_format import Reader; r = Reader(sys.argv[1]); "
                       "print(json.dumps([[r[i][0].tolist(), int(r[i][1])] for i in range(r.num_samples)]))")
    read_back = run([python, '-c', samples_as_json, written])
    samples = json.loads(read_back.stdout)
    assert len(samples) == 6
    for i, (image, label) in enumerate(samples):
        assert label == 10 * i
        np.testing.assert_array_equal(np.array(image, dtype=np.uint8), images[i])
