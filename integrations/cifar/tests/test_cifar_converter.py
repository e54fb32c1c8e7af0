"""write_datasets.py on generated pickle files in CIFAR-10's own format."""
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import write_datasets  # noqa: E402
from ffcv_format import Reader  # noqa: E402

PER_BATCH = 7   # images per generated batch file


def cifar_batch(rng, n):
    """A batch as CIFAR-10 ships it: channel-planar rows of 3072 bytes, labels as a list."""
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    labels = rng.integers(0, 10, n).tolist()
    batch = {b'batch_label': b'generated', b'labels': labels, b'data': rows,
             b'filenames': [f'img_{i}.png'.encode() for i in range(n)]}
    return batch, images, labels


@pytest.fixture
def cifar_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / 'cifar-10-batches-py'
    folder.mkdir()
    expected = {}
    for name in write_datasets.TRAIN_BATCHES + write_datasets.TEST_BATCHES:
        batch, images, labels = cifar_batch(rng, PER_BATCH)
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        expected[name] = (images, labels)
    (folder / 'batches.meta').write_bytes(pickle.dumps({b'label_names': [b'airplane'] * 10}, protocol=2))
    return folder, expected


def check_file(path, batches):
    images = np.concatenate([b[0] for b in batches])
    labels = [label for b in batches for label in b[1]]
    reader = Reader(str(path))
    assert reader.num_samples == len(labels)
    for i in range(reader.num_samples):
        image, label = reader[i]
        assert np.array_equal(image, images[i]), f"sample {i}: pixels differ"
        assert label == labels[i], f"sample {i}: label differs"


@pytest.mark.parametrize('packed', [False, True], ids=['folder', 'tar.gz'])
def test_converter_keeps_every_pixel_and_label(tmp_path, cifar_folder, packed):
    folder, expected = cifar_folder
    source = folder
    if packed:
        source = tmp_path / 'cifar-10-python.tar.gz'
        with tarfile.open(source, 'w:gz') as archive:
            archive.add(folder, arcname='cifar-10-batches-py')
    out = tmp_path / 'out'
    written = write_datasets.write_datasets(source, out, workers=1)
    assert written == {str(out / 'cifar_train.beton'): 5 * PER_BATCH,
                       str(out / 'cifar_test.beton'): PER_BATCH}
    check_file(out / 'cifar_train.beton', [expected[n] for n in write_datasets.TRAIN_BATCHES])
    check_file(out / 'cifar_test.beton', [expected[n] for n in write_datasets.TEST_BATCHES])


def test_converter_refuses_what_is_not_a_cifar_batch(tmp_path, cifar_folder):
    folder, _ = cifar_folder
    wrong_width = {b'data': np.zeros((2, 100), np.uint8), b'labels': [0, 1]}
    (folder / 'data_batch_3').write_bytes(pickle.dumps(wrong_width))
    with pytest.raises(ValueError, match='data_batch_3.*N x 3072'):
        write_datasets.write_datasets(folder, tmp_path / 'out', workers=1)
    (folder / 'data_batch_3').unlink()
    with pytest.raises(FileNotFoundError, match='data_batch_3'):
        write_datasets.write_datasets(folder, tmp_path / 'out', workers=1)


def test_converter_does_not_unpickle_other_classes(tmp_path, cifar_folder):
    folder, _ = cifar_folder
    (folder / 'data_batch_1').write_bytes(pickle.dumps({b'data': Path('/'), b'labels': []}))
    with pytest.raises(pickle.UnpicklingError, match='refusing'):
        write_datasets.write_datasets(folder, tmp_path / 'out', workers=1)
