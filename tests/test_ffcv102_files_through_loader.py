"""Files written by FFCV 1.0.2 (packages/ffcv-format/tests/data/ffcv-1.0.2) load through
the Loader with FFCV 1.0's import paths and give the values they were written from."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ffcv.fields.decoders import (BytesDecoder, CenterCropRGBImageDecoder, FloatDecoder, IntDecoder,
                                  NDArrayDecoder)
from ffcv.loader import Loader, OrderOption

DATA = Path(__file__).resolve().parents[1] / 'packages' / 'ffcv-format' / 'tests' / 'data' / 'ffcv-1.0.2'


def load_all(name, pipelines, batch_size=64):
    loader = Loader(str(DATA / f'{name}.beton'), batch_size=batch_size, num_workers=2,
                    order=OrderOption.SEQUENTIAL, drop_last=False, pipelines=pipelines)
    batches = [tuple(np.array(x, copy=True) for x in batch) for batch in loader]
    return [np.concatenate(column) for column in zip(*batches)]


def test_scalars():
    expected = np.load(DATA / 'scalars.expected.npz')
    label, weight = load_all('scalars', {'label': [IntDecoder()], 'weight': [FloatDecoder()]})
    assert np.array_equal(label[:, 0], expected['label'])
    assert np.array_equal(weight[:, 0], expected['weight'])


def test_bytes_and_json():
    expected = np.load(DATA / 'bytes_json.expected.npz')
    blob, meta = load_all('bytes_json', {'blob': [BytesDecoder()], 'meta': [BytesDecoder()]})
    for i in range(200):
        want = expected[f'blob_{i}']
        assert np.array_equal(blob[i, :want.size], want) and not blob[i, want.size:].any()
    records = [json.loads(row.tobytes().rstrip(b'\0').decode()) for row in meta]
    assert records == json.loads(str(expected['meta']))


def test_ndarrays():
    expected = np.load(DATA / 'ndarray.expected.npz')
    x, y = load_all('ndarray', {'x': [NDArrayDecoder()], 'y': [NDArrayDecoder()]})
    assert np.array_equal(x, expected['x']) and np.array_equal(y, expected['y'])


@pytest.mark.parametrize('name, tolerance', [('images_raw', 0), ('images_jpg', 4), ('images_proportion', 4)])
def test_images_center_cropped(name, tolerance):
    expected = np.load(DATA / 'images.expected.npz')
    images, labels = load_all(name, {'image': [CenterCropRGBImageDecoder((24, 24), ratio=1.0)],
                                     'label': [IntDecoder()]}, batch_size=16)
    assert np.array_equal(labels[:, 0], expected['labels'])
    for i in range(40):
        original = expected[f'img_{i}']
        h, w = original.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        reference = cv2.resize(original[top:top + side, left:left + side], (24, 24), interpolation=cv2.INTER_AREA)
        diff = np.abs(images[i].astype(int) - reference.astype(int)).mean()
        assert diff <= tolerance, (i, diff)
