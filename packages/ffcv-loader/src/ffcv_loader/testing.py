"""Helpers for tests of the Loader and of code built on it: small .beton files."""
import numpy as np
from ffcv_format import IntField, NDArrayField, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset


def ids_file(path, n, page_size=1 << 21, payload=0):
    """Samples whose 'id' is their index (and, with payload > 0, an array of that many
    int32 equal to the index, spreading samples over pages)."""
    fields = {'id': IntField()}
    if payload:
        fields['data'] = NDArrayField(np.dtype('int32'), (payload,))
        samples = [(i, np.full(payload, i, np.int32)) for i in range(n)]
    else:
        samples = [(i,) for i in range(n)]
    write_dataset(path, fields, samples, page_size=page_size)
    return path


def images_file(path, n, seed=0, write_mode='jpg', sizes=(60, 140)):
    rng = np.random.default_rng(seed)
    samples = [(photo_like_image(rng, int(rng.integers(*sizes)), int(rng.integers(*sizes))), i)
               for i in range(n)]
    write_dataset(path, {'image': RGBImageField(write_mode=write_mode, jpeg_quality=90), 'label': IntField()},
                  samples)
    return path, samples
