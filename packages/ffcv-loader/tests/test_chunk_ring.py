"""Worker threads that claim chunks inside compiled code (``ffcv_ops.chunk_ring``): the same
batches as the path that returns to Python per chunk, every way a chunk can need Python,
errors, and stopping."""
import threading

import numpy as np
import pytest
from ffcv_format import FormatError, ImageField, IntField, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset
from ffcv_loader import Loader, OrderOption
from ffcv_ops import (CenterCropRGBImageDecoder, IntDecoder, RandomHorizontalFlip, RandomResizedCropRGBImageDecoder,
                      ToTensor)

N = 150


def write_images(path, field, sizes, seed=3):
    rng = np.random.default_rng(seed)
    samples = [(photo_like_image(rng, h, w, 3), k) for k, (h, w) in enumerate(sizes)]
    write_dataset(path, {'image': field, 'label': IntField()}, samples)
    return str(path)


@pytest.fixture(scope='module')
def jpeg_path(tmp_path_factory):
    rng = np.random.default_rng(5)
    sizes = [(int(rng.integers(20, 90)), int(rng.integers(20, 90))) for _ in range(N)]
    return write_images(tmp_path_factory.mktemp('ring') / 'jpeg.beton', RGBImageField(write_mode='jpg'), sizes)


def image_ops(kind):
    if kind == 'rrc+flip':
        return [RandomResizedCropRGBImageDecoder((24, 24)), RandomHorizontalFlip()]
    if kind == 'rrc':
        return [RandomResizedCropRGBImageDecoder((24, 24))]
    return [CenterCropRGBImageDecoder((24, 24), 224 / 256)]


def loader(path, kind, os_cache, workers=2, batch_size=40, **options):
    """A Loader over ``path``; the chunk ring is on unless ``FFCV_CHUNK_RING=0`` is set."""
    return Loader(path, batch_size=batch_size, num_workers=workers, order=OrderOption.RANDOM, seed=9, drop_last=False,
                  os_cache=os_cache, pipelines={'image': image_ops(kind), 'label': [IntDecoder(), ToTensor()]},
                  **options)


def epoch(loader_, uses_ring=None):
    batches = []
    iterator = iter(loader_)
    if uses_ring is not None:
        assert (iterator._run.ring is not None) == uses_ring
    for images, labels in iterator:
        batches.append((np.asarray(images).copy(), np.asarray(labels).copy()))
    return batches


def assert_same(batches, expected):
    assert len(batches) == len(expected)
    for (images, labels), (images2, labels2) in zip(batches, expected):
        np.testing.assert_array_equal(labels, labels2)
        np.testing.assert_array_equal(images, images2)


def chunk_path(monkeypatch, make):
    """What ``make()`` gives with the ring turned off."""
    with monkeypatch.context() as m:
        m.setenv('FFCV_CHUNK_RING', '0')
        return make()


@pytest.mark.parametrize('kind', ['rrc+flip', 'rrc', 'center'])
@pytest.mark.parametrize('workers', [1, 3])
@pytest.mark.parametrize('os_cache', [True, False])
def test_the_ring_gives_the_batches_of_the_chunk_path(monkeypatch, jpeg_path, kind, workers, os_cache):
    # os_cache=False: pages are read into the process cache and waited for before publishing
    expected = chunk_path(monkeypatch, lambda: epoch(loader(jpeg_path, kind, os_cache, workers), uses_ring=False))
    got = epoch(loader(jpeg_path, kind, os_cache, workers), uses_ring=True)
    assert sum(len(labels) for _, labels in got) == N and len(got) == 4     # 40 + 40 + 40 + 30
    assert_same(got, expected)


def test_the_ring_over_several_epochs_and_batch_sizes(monkeypatch, jpeg_path):
    for batch_size in (7, 16, 64, 200):
        ring_loader = loader(jpeg_path, 'rrc+flip', True, batch_size=batch_size, batches_ahead=1)
        chunk_loader = chunk_path(monkeypatch, lambda: loader(jpeg_path, 'rrc+flip', True, batch_size=batch_size,
                                                              batches_ahead=1))
        for _ in range(2):
            got = epoch(ring_loader, uses_ring=True)
            expected = chunk_path(monkeypatch, lambda: epoch(chunk_loader, uses_ring=False))
            assert sum(len(labels) for _, labels in got) == N
            assert_same(got, expected)


def test_images_for_the_python_path_and_a_workspace_to_grow(monkeypatch, tmp_path):
    """PNG images (left to the Python path by the kernel), and images large enough that
    every thread's first workspace is too small: each such chunk goes back to Python once."""
    rng = np.random.default_rng(8)
    png = write_images(tmp_path / 'png.beton', ImageField(write_mode='png', channels=3),
                       [(int(rng.integers(20, 60)), int(rng.integers(20, 60))) for _ in range(60)])
    large = write_images(tmp_path / 'large.beton', RGBImageField(write_mode='jpg'),
                         [(int(rng.integers(600, 900)), int(rng.integers(600, 900))) for _ in range(40)])
    for path in (png, large):
        expected = chunk_path(monkeypatch, lambda: epoch(loader(path, 'rrc+flip', True), uses_ring=False))
        got = epoch(loader(path, 'rrc+flip', True), uses_ring=True)
        assert sum(len(labels) for _, labels in got) == (60 if path == png else 40)
        assert_same(got, expected)


def test_a_pipeline_with_more_worker_operations_keeps_the_chunk_path(jpeg_path):
    from ffcv_ops import Cutout
    pipelines = {'image': [RandomResizedCropRGBImageDecoder((24, 24)), RandomHorizontalFlip(), Cutout(4)],
                 'label': [IntDecoder(), ToTensor()]}
    iterator = iter(Loader(jpeg_path, batch_size=40, num_workers=2, drop_last=False, pipelines=pipelines))
    assert iterator._run.ring is None
    assert sum(len(labels) for _, labels in iterator) == N


def test_a_damaged_image_raises_as_on_the_chunk_path(monkeypatch, tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / 'damaged.beton'
    reader = write_dataset(path, {'image': RGBImageField(write_mode='jpg'), 'label': IntField()},
                           [(photo_like_image(rng, 64, 64, 3), k) for k in range(80)])
    ptr = int(reader.metadata['image']['data_ptr'][57])
    del reader
    data = bytearray(path.read_bytes())
    data[ptr:ptr + 4] = b'\x00\x00\x00\x00'           # sample 57's JPEG loses its first marker
    path.write_bytes(bytes(data))
    def first_error():
        with pytest.raises(Exception) as caught:
            for _ in loader(str(path), 'rrc+flip', True):
                pass
        return caught.value

    expected, got = chunk_path(monkeypatch, first_error), first_error()
    assert type(got) is type(expected) and str(got) == str(expected)
    assert isinstance(got, FormatError) and 'sample 57' in str(got), got


def test_a_break_mid_epoch_stops_the_claiming_threads(jpeg_path):
    before = {t.ident for t in threading.enumerate()}
    ring_loader = loader(jpeg_path, 'rrc+flip', True, workers=3, batch_size=8)
    for k, _ in enumerate(ring_loader):
        if k == 2:
            break
    import gc
    gc.collect()
    for t in threading.enumerate():
        if t.ident not in before:
            t.join(timeout=10)
    assert not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    # and the loader goes on with a full epoch afterwards
    assert sum(len(labels) for _, labels in ring_loader) == N
