"""Small .beton files the tests of ffcv-ops share (written once per session)."""
import numpy as np
import pytest
from ffcv_format import ImageField, IntField, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset

from ffcv_ops import Compiler


@pytest.fixture(autouse=True)
def compiler_enabled():
    """Every test starts, and leaves, with the compiler on."""
    Compiler.set_enabled(True)
    yield
    Compiler.set_enabled(True)


def _photos(seed, sizes, channels=3):
    rng = np.random.default_rng(seed)
    return [photo_like_image(rng, h, w, channels) for h, w in sizes]


@pytest.fixture(scope='session')
def jpeg_file(tmp_path_factory):
    """40 JPEG photos of varying sizes (31..90 px per side) with labels."""
    rng = np.random.default_rng(7)
    sizes = [(int(rng.integers(31, 91)), int(rng.integers(31, 91))) for _ in range(40)]
    samples = [(image, k) for k, image in enumerate(_photos(1, sizes))]
    return write_dataset(tmp_path_factory.mktemp('jpeg') / 'jpeg.beton',
                         {'image': RGBImageField(write_mode='jpg', jpeg_quality=90), 'label': IntField()},
                         samples)


@pytest.fixture(scope='session')
def same_size_file(tmp_path_factory):
    """48 photos of 24x20 (height x width), stored raw and as JPEG."""
    images = _photos(2, [(24, 20)] * 48)
    return write_dataset(tmp_path_factory.mktemp('same') / 'same.beton',
                         {'raw': RGBImageField(write_mode='raw'), 'jpg': RGBImageField(write_mode='jpg')},
                         [(image, image) for image in images])


@pytest.fixture(scope='session')
def channels_file(tmp_path_factory):
    """Grayscale (JPEG and raw), RGBA (PNG and raw) and RGB PNG images of varying sizes."""
    rng = np.random.default_rng(3)
    sizes = [(int(rng.integers(20, 60)), int(rng.integers(20, 60))) for _ in range(24)]
    gray, rgba, rgb = _photos(4, sizes, 1), _photos(5, sizes, 4), _photos(6, sizes, 3)
    fields = {'gray_jpg': ImageField(write_mode='jpg', channels=1),
              'gray_raw': ImageField(write_mode='raw', channels=1),
              'rgba_png': ImageField(write_mode='png', channels=4),
              'rgba_raw': ImageField(write_mode='raw', channels=4),
              'rgb_png': ImageField(write_mode='png', channels=3)}
    return write_dataset(tmp_path_factory.mktemp('channels') / 'channels.beton', fields,
                         [(g, g, a, a, c) for g, a, c in zip(gray, rgba, rgb)])


@pytest.fixture(scope='session')
def small_images_file(tmp_path_factory):
    """400 raw 16x20 RGB images whose pixels are never 0 (so a zero fill is visible), with labels."""
    rng = np.random.default_rng(6)
    images = rng.integers(1, 256, (400, 16, 20, 3), dtype=np.uint8)
    return write_dataset(tmp_path_factory.mktemp('small') / 'small.beton',
                         {'image': RGBImageField(write_mode='raw'), 'label': IntField()},
                         [(image, k) for k, image in enumerate(images)])
