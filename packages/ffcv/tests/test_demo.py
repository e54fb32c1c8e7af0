"""`ffcv demo`: run as a user would (a subprocess), on part of the digits; and its pieces."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch
from ffcv_format import Reader

from ffcv.cli import main
from ffcv.demo.comparison import JpegDigitsDataset
from ffcv.demo.data import DigitSplit, split_digits, write_beton
from ffcv.demo.loading import digits_loader
from ffcv.demo.model import DigitNet

#: a reduced run: 400 training and 100 test images, 5 epochs (96% with seed 0, 95% to 97% with seeds 0 to 5)
QUICK = ['--samples', '500', '--epochs', '5', '--batch-size', '32', '--workers', '2']
ACCURACY = re.compile(r'^test accuracy: (\d+\.\d)% \((\d+) of (\d+) test images\)$')
THROUGHPUT = re.compile(r'^  (ffcv Loader|torch DataLoader): +([\d,]+) images/s \((\d+) epochs\)', re.M)


def demo(*args, tmpdir, env=None):
    """``python -m ffcv demo ARGS`` with its temporary files under ``tmpdir``."""
    env = {**os.environ, 'TMPDIR': str(tmpdir), **(env or {})}
    return subprocess.run([sys.executable, '-m', 'ffcv', 'demo', *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env)


def demo_dirs(tmpdir):
    """The demo's temporary directories under ``tmpdir`` (torch may leave its own caches there)."""
    return list(tmpdir.glob('ffcv-demo-*'))


def accuracy_of(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    last = result.stdout.splitlines()[-1]
    match = ACCURACY.match(last)
    assert match, last
    percent, correct, total = float(match[1]), int(match[2]), int(match[3])
    assert percent == pytest.approx(100 * correct / total, abs=0.05)
    return percent, total


def assert_one_line_error(result, status, *fragments):
    assert result.returncode == status, (result.stdout, result.stderr)
    assert 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith('ffcv demo: error: ')]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_quick_run_trains_compares_both_loaders_and_removes_its_files(tmp_path):
    result = demo(*QUICK, tmpdir=tmp_path)
    percent, total = accuracy_of(result)
    assert percent >= 85 and total == 100
    assert 'digits: 500 of' in result.stdout and '400 for training and 100 for testing' in result.stdout
    assert result.stdout.count('\nepoch ') == 5
    speeds = {name: int(value.replace(',', '')) for name, value, _ in THROUGHPUT.findall(result.stdout)}
    assert set(speeds) == {'ffcv Loader', 'torch DataLoader'} and min(speeds.values()) > 0
    assert 'epoch 1/5' in result.stderr          # the progress bars
    removed = re.search(r'^removed (\S+)$', result.stdout, re.M)
    assert removed and os.path.dirname(removed[1]) == str(tmp_path)
    assert not os.path.exists(removed[1]) and not demo_dirs(tmp_path)


def test_same_seed_same_files_and_results_kept_where_asked(tmp_path, capsys):
    """--keep keeps the temporary directory, --dir writes where it says; with the same seed
    the files are the same bytes and training gives the same losses, whatever --workers
    (one run as a user would, one in this process, which saves starting Python)."""
    args = ['--samples', '200', '--epochs', '2', '--batch-size', '32', '--seed', '3', '--no-compare', '-q']
    kept = demo(*args, '--keep', '--workers', '1', tmpdir=tmp_path)
    status = main(['demo', *args, '--dir', str(tmp_path / 'out'), '--workers', '2'])
    chosen = subprocess.CompletedProcess(args, status, *capsys.readouterr())
    assert accuracy_of(kept) == accuracy_of(chosen)
    assert kept.stderr == chosen.stderr == ''    # -q: no progress bars

    def losses(result):
        return re.findall(r'^epoch \d/2: loss [\d.]+, train accuracy [\d.]+%', result.stdout, re.M)

    assert len(losses(kept)) == 2 and losses(kept) == losses(chosen)
    assert 'images/s' not in kept.stdout + chosen.stdout          # --no-compare
    kept_dir = re.search(r'^kept (\S+)$', kept.stdout, re.M)[1]
    assert os.path.dirname(kept_dir) == str(tmp_path)
    for part, count in (('train', 160), ('test', 40)):
        ours = os.path.join(kept_dir, f'digits-{part}.beton')
        with open(ours, 'rb') as f:
            assert f.read() == (tmp_path / 'out' / f'digits-{part}.beton').read_bytes()
        with Reader(ours) as reader:
            assert reader.num_samples == count
            assert bytes(reader.stored_bytes(0, 'image')[:2]) == b'\xff\xd8'          # a JPEG
            image, label = reader[0]
            assert image.shape == (32, 32, 3) and 0 <= label <= 9


def test_bad_values_are_one_line_errors(tmp_path, capsys, monkeypatch):
    """In this process (the same code as the console script, without starting Python each time)."""
    monkeypatch.setenv('TMPDIR', str(tmp_path))
    monkeypatch.setattr(tempfile, 'tempdir', None)    # so that TMPDIR is read again

    def run(*args):
        try:
            status = main(['demo', *args])
        except SystemExit as exit:
            status = exit.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, out, err)

    line = assert_one_line_error(run('--epochs', '0'), 2, '--epochs', "'0'")
    assert 'positive integer' in line
    assert_one_line_error(run('--jpeg-quality', '101'), 2, '--jpeg-quality', '1 to 100')
    for args, fragments in ((['--samples', '5000'], ['--samples', '5000', '1797']),
                            (['--image-size', '4'], ['--image-size', '8 to 256']),
                            (['--samples', '50', '--batch-size', '64'],
                             ['--batch-size 64', '40 training images'])):
        result = run(*args)
        assert_one_line_error(result, 1, *fragments)
        assert result.stderr.count('\n') == 1 and result.stdout == ''
    assert not demo_dirs(tmp_path)


def test_without_scikit_learn_says_what_to_install(tmp_path):
    hidden = tmp_path / 'hide' / 'sklearn'
    hidden.mkdir(parents=True)
    # a scikit-learn that is not there: first on the path, it raises what a missing one would
    (hidden / '__init__.py').write_text('raise ModuleNotFoundError("no sklearn", name="sklearn")\n')
    (tmp_path / 'tmp').mkdir()
    path = os.pathsep.join(filter(None, [str(tmp_path / 'hide'), os.environ.get('PYTHONPATH')]))
    result = demo('--samples', '100', tmpdir=tmp_path / 'tmp', env={'PYTHONPATH': path})
    assert_one_line_error(result, 1, "pip install 'ffcv[demo]'", 'scikit-learn')
    assert result.stderr.count('\n') == 1 and not demo_dirs(tmp_path / 'tmp')


def test_help_explains_every_flag():
    result = subprocess.run([sys.executable, '-m', 'ffcv', 'demo', '--help'], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith('usage: ffcv demo')
    for flag in ('--dir', '--keep', '--epochs', '--batch-size', '--workers', '--seed', '--image-size',
                 '--samples', '--jpeg-quality', '--no-compare', '--quiet'):
        assert re.search(rf'^  (-\w, )?{flag}\b.*\n? +\S', result.stdout, re.M), flag
    assert 'examples:\n' in result.stdout and "pip install 'ffcv[demo]'" in result.stdout
    listed = subprocess.run([sys.executable, '-m', 'ffcv', '--help'], capture_output=True, text=True).stdout
    assert '\n    demo ' in listed


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(10), [50, 60, 40, 55, 45, 50, 52, 48, 51, 49])
    images = np.arange(len(labels))          # stand-ins: each "image" is its index
    train, test = split_digits(images, labels, test_fraction=0.2, samples=None, seed=1)
    assert len(train) + len(test) == len(labels)
    assert np.bincount(test.labels).tolist() == [round(c * 0.2) for c in np.bincount(labels)]
    assert not set(train.images.tolist()) & set(test.images.tolist())
    assert np.array_equal(labels[train.images], train.labels)
    assert np.array_equal(labels[test.images], test.labels)
    again, _ = split_digits(images, labels, test_fraction=0.2, samples=None, seed=1)
    other, _ = split_digits(images, labels, test_fraction=0.2, samples=None, seed=2)
    assert np.array_equal(again.images, train.images) and not np.array_equal(other.images, train.images)
    for samples in (50, 101, 333):
        part_train, part_test = split_digits(images, labels, test_fraction=0.2, samples=samples, seed=1)
        assert len(part_train) + len(part_test) == samples
        assert set(part_test.labels.tolist()) == set(range(10))


@pytest.mark.parametrize('size', [8, 16, 32, 64])
def test_network_sees_whole_image_of_any_size(size):
    net = DigitNet(image_size=size)
    assert net(torch.zeros(2, 3, size, size, dtype=torch.uint8)).shape == (2, 10)
    last_conv_input = net.features(torch.zeros(1, 3, size, size)).shape[-1]
    assert last_conv_input <= 4


def test_dataloader_side_decodes_the_same_jpegs_and_shifts_like_the_loader(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 24, 24, 3), dtype=np.uint8)
    images = np.repeat(images.mean(axis=3, keepdims=True).astype(np.uint8), 3, axis=3)   # grey, as the digits
    path = str(tmp_path / 'x.beton')
    write_beton(path, DigitSplit(images, np.arange(40) % 10), jpeg_quality=90, workers=2, progress=False)
    loader = digits_loader(path, batch_size=8, workers=2, seed=0, shift=None)
    stored = torch.cat([batch_images for batch_images, _ in loader]).permute(0, 2, 3, 1).numpy()
    unshifted = JpegDigitsDataset(path, shift=0)
    for i in range(40):
        image, label = unshifted[i]
        assert label == i % 10 and np.array_equal(image.numpy(), stored[i])
    shifted = JpegDigitsDataset(path, shift=2)
    moves = set()
    for i in range(40):
        image = shifted[i][0].numpy()
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(image, np.roll(stored[i], (dy, dx), axis=(0, 1)) * _inside(24, dy, dx))]
        assert found, i
        moves.add(found[0])
    assert len(moves) > 5
    train_images, _ = next(iter(digits_loader(path, batch_size=8, workers=2, seed=0, shift=2)))
    assert train_images.shape == (8, 3, 24, 24) and train_images.dtype == torch.uint8


def _inside(size, dy, dx):
    """Mask (size x size x 1) of the pixels that an image shifted by (dy, dx) takes from the image."""
    mask = np.zeros((size, size, 1), np.uint8)
    mask[max(dy, 0):size + min(dy, 0), max(dx, 0):size + min(dx, 0)] = 1
    return mask
