"""Regenerate the checked-in `.beton` test vectors with OUR writer.

Run on purpose only (the tests never run it: the checked-in files pin the
byte format):

    cd packages/ffcv-format
    PYTHONPATH=src python3 tests/data/vectors/make_vectors.py [names...]

Each vector `<name>.beton` comes with its expected contents, written here
from the source values and independently of the writer's output:

* `<name>.expected.json`: num_samples, page_size, per field: name, the type id
  and arguments docs/format.md prescribes (dtype/shape, channels), for images
  the allowed storage modes and the JPEG quality; and the values of JSON fields.
* `<name>.expected.npz`: the other values. Scalars and ndarrays: one array per
  field (`<field>`, first axis = sample); bytes and images: `<field>.<i>`.
  Images are the source pixels, already resized the way max_resolution asks
  (longest side to max_resolution, cv2.INTER_AREA), HxWxC uint8, RGB(A).

The torch vector is written only where torch is importable.
"""

import json
import os
import sys

import numpy as np
import cv2

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE_SIZE = 2 ** 21

from ffcv_format import (DatasetWriter, IntField, FloatField, BytesField,  # noqa: E402
                         JSONField, NDArrayField, TorchTensorField,
                         RGBImageField, ImageField)

try:
    import torch
except ImportError:
    torch = None

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------



def smooth_image(rng, h, w, c):
    """A smooth image (JPEG-friendly: low frequencies, slowly varying
    colour) with a little noise, uint8 HxWxc."""
    y = np.linspace(0, 1, h)[:, None]
    x = np.linspace(0, 1, w)[None, :]
    a, b, p = rng.uniform(0.2, 0.8, size=3)
    lum = 0.5 + 0.3 * np.sin(2 * np.pi * (a * x + b * y) + p)
    chans = []
    for k in range(c):
        gx, gy = rng.uniform(-0.15, 0.15, size=2)
        chans.append(lum + gx * (x - 0.5) + gy * (y - 0.5))
    img = np.stack(chans, axis=-1) * 255 + rng.normal(0, 1.5, size=(h, w, c))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def resized(img, max_res):
    h, w = img.shape[:2]
    if max_res is None or max(h, w) <= max_res:
        return img
    r = max_res / max(h, w)
    out = cv2.resize(img, (int(w * r), int(h * r)), interpolation=cv2.INTER_AREA)
    if out.ndim == 2:
        out = out[:, :, None]
    return out


def write(name, fields, rows, expected_fields, npz, json_values=None):
    path = os.path.join(HERE, name + '.beton')
    w = DatasetWriter(path, fields, page_size=PAGE_SIZE, num_workers=1,
                      progress=False, overwrite=True)
    w.from_indexed_dataset(rows)
    exp = {'num_samples': len(rows), 'page_size': PAGE_SIZE,
           'fields': expected_fields, 'json_values': json_values or {}}
    with open(os.path.join(HERE, name + '.expected.json'), 'w') as fh:
        json.dump(exp, fh, indent=1, ensure_ascii=True)
        fh.write('\n')
    np.savez_compressed(os.path.join(HERE, name + '.expected.npz'), **npz)
    print(f'wrote {path}: {os.path.getsize(path)} bytes')


# ---------------------------------------------------------------------------
# vectors
# ---------------------------------------------------------------------------


def v_scalars():
    labels = [0, 1, -1, 2 ** 63 - 1, -2 ** 63, 123456789012345, -42, 7]
    weights = [0.0, -0.0, 1.5, float('inf'), float('-inf'), float('nan'),
               5e-324, np.pi]
    rows = list(zip(labels, weights))
    write('scalars',
          {'label': IntField(), 'weight': FloatField()},
          rows,
          [{'name': 'label', 'type_id': 1}, {'name': 'weight', 'type_id': 0}],
          {'label': np.array(labels, dtype='<i8'),
           'weight': np.array(weights, dtype='<f8')})


def v_empty():
    # zero samples, one field of (nearly) every type, a 16-byte name
    fields = {
        'a_sixteen_chars_': IntField(),
        'w': FloatField(),
        'blob': BytesField(),
        'meta': JSONField(),
        'arr': NDArrayField(np.dtype('float32'), (2, 3)),
        'rgb': RGBImageField(write_mode='jpg'),
        'gray': ImageField(channels=1, write_mode='png'),
        'rgba': ImageField(channels=4, write_mode='raw'),
    }
    expected = [
        {'name': 'a_sixteen_chars_', 'type_id': 1},
        {'name': 'w', 'type_id': 0},
        {'name': 'blob', 'type_id': 3},
        {'name': 'meta', 'type_id': 5},
        {'name': 'arr', 'type_id': 4, 'dtype': '<f4', 'shape': [2, 3]},
        {'name': 'rgb', 'type_id': 2, 'channels': 3},
        {'name': 'gray', 'type_id': 7, 'channels': 1},
        {'name': 'rgba', 'type_id': 7, 'channels': 4},
    ]
    write('empty', fields, [], expected,
          {'a_sixteen_chars_': np.zeros(0, '<i8'), 'w': np.zeros(0, '<f8'),
           'arr': np.zeros((0, 2, 3), '<f4')},
          {'meta': []})


ND_SPECS = [  # name, dtype, shape
    ('f32', np.dtype('float32'), (3, 5)),
    ('u8', np.dtype('uint8'), (7,)),
    ('i64', np.dtype('int64'), (2, 2, 2)),
    ('f64', np.dtype('float64'), (1,)),
    ('flag', np.dtype('bool'), (4,)),
    ('f16', np.dtype('float16'), (3,)),
    ('i16', np.dtype('int16'), (2, 1, 3, 1)),
]


def v_bytes_json_ndarray():
    rng = np.random.RandomState(1)
    n = 12
    blobs = [b'', b'\x00', b'hello', bytes(range(256)), b'\x00' * 17]
    while len(blobs) < n:
        blobs.append(rng.randint(0, 256, size=rng.randint(1, 3000))
                     .astype(np.uint8).tobytes())
    metas = [
        {},
        [],
        None,
        'h\u00e9llo \u2713 \u65e5\u672c \U0001F600',
        {'nested': {'a': [1, 2, {'b': None}], 'c': {'d': {'e': 'deep'}}}},
        {'nul': 'a\u0000b', 'quote': 'say "hi"\n\t\\', 'empty': ''},
        [True, False, None, 0, -1, 2 ** 70, 1.5, -0.0, 1e308],
        {'id': 7, 'tags': ['x', 'y'], 'score': 0.1 + 0.2},
        '',
        12345,
        {'\u00fcber': {'\u00df': ['\u03c0', 3.14159]}},
        {'k%d' % i: i for i in range(20)},
    ]
    assert len(metas) == n
    arrays = {}
    for name, dt, shape in ND_SPECS:
        if dt.kind == 'b':
            a = rng.randint(0, 2, size=(n,) + shape).astype(bool)
        elif dt.kind == 'f':
            a = rng.normal(0, 100, size=(n,) + shape).astype(dt)
        else:
            info = np.iinfo(dt)
            a = rng.randint(max(info.min, -2 ** 62), min(info.max, 2 ** 62),
                            size=(n,) + shape, dtype=np.int64).astype(dt)
        arrays[name] = a
    arrays['f32'][0, 0, 0] = np.nan
    arrays['f32'][0, 0, 1] = -np.inf
    arrays['i64'][1, 0, 0, 0] = np.iinfo(np.int64).min
    arrays['i64'][1, 0, 0, 1] = np.iinfo(np.int64).max

    fields = {'blob': BytesField(), 'meta': JSONField()}
    expected = [{'name': 'blob', 'type_id': 3}, {'name': 'meta', 'type_id': 5}]
    for name, dt, shape in ND_SPECS:
        fields[name] = NDArrayField(dt, shape)
        expected.append({'name': name, 'type_id': 4, 'dtype': dt.str,
                         'shape': list(shape)})
    rows = []
    for i in range(n):
        rows.append((np.frombuffer(blobs[i], np.uint8), metas[i])
                    + tuple(arrays[name][i] for name, _, _ in ND_SPECS))
    npz = {f'blob.{i}': np.frombuffer(b, np.uint8) for i, b in enumerate(blobs)}
    npz.update(arrays)
    write('bytes_json_ndarray', fields, rows, expected, npz, {'meta': metas})


def v_torch():
    if torch is None:
        print('torch is not importable: skipping the torch vector')
        return
    rng = np.random.RandomState(2)
    n = 6
    a = rng.normal(size=(n, 4)).astype(np.float32)
    b = rng.randint(-10 ** 12, 10 ** 12, size=(n, 2, 3)).astype(np.int64)
    labels = np.arange(n, dtype=np.int64)
    rows = [(torch.from_numpy(a[i].copy()), torch.from_numpy(b[i].copy()),
             int(labels[i])) for i in range(n)]
    write('torch',
          {'t_f32': TorchTensorField(torch.float32, (4,)),
           't_i64': TorchTensorField(torch.int64, (2, 3)),
           'label': IntField()},
          rows,
          [{'name': 't_f32', 'type_id': 6, 'dtype': '<f4', 'shape': [4]},
           {'name': 't_i64', 'type_id': 6, 'dtype': '<i8', 'shape': [2, 3]},
           {'name': 'label', 'type_id': 1}],
          {'t_f32': a, 't_i64': b, 'label': labels})


JPEG_QUALITY = 90


def v_images_rgb():
    rng = np.random.RandomState(3)
    sizes = [(8, 8), (16, 40), (45, 30), (60, 60), (33, 17), (24, 64),
             (50, 12), (1, 5)]
    imgs = [smooth_image(rng, h, w, 3) for h, w in sizes]
    specs = [  # name, field, type_id, allowed modes, max_resolution
        ('raw', RGBImageField(write_mode='raw'), 2, [1], None),
        ('jpg', RGBImageField(write_mode='jpg', jpeg_quality=JPEG_QUALITY),
         2, [0], None),
        ('smart', RGBImageField(write_mode='smart', smart_threshold=1500,
                                jpeg_quality=JPEG_QUALITY), 2, [0, 1], None),
        ('proportion', RGBImageField(write_mode='proportion',
                                     compress_probability=0.5,
                                     jpeg_quality=JPEG_QUALITY),
         2, [0, 1], None),
        ('raw_max32', RGBImageField(write_mode='raw', max_resolution=32),
         2, [1], 32),
    ]
    fields = {'label': IntField()}
    expected = [{'name': 'label', 'type_id': 1}]
    npz = {'label': np.arange(len(imgs), dtype='<i8')}
    for name, field, tid, modes, max_res in specs:
        fields[name] = field
        expected.append({'name': name, 'type_id': tid, 'channels': 3,
                         'modes': modes, 'jpeg_quality': JPEG_QUALITY})
        for i, img in enumerate(imgs):
            npz[f'{name}.{i}'] = resized(img, max_res)
    rows = [(i,) + (img,) * len(specs) for i, img in enumerate(imgs)]
    write('images_rgb', fields, rows, expected, npz)


def v_images_ext():
    rng = np.random.RandomState(4)
    sizes = [(10, 10), (23, 41), (40, 7), (1, 1), (31, 32), (64, 48)]
    gray = [smooth_image(rng, h, w, 1) for h, w in sizes]
    rgb = [smooth_image(rng, h, w, 3) for h, w in sizes]
    rgba = [smooth_image(rng, h, w, 4) for h, w in sizes]
    # grayscale values are given alternately as HxW and HxWx1
    gray_in = [g[:, :, 0] if i % 2 == 0 else g for i, g in enumerate(gray)]
    specs = [  # name, field, type id, channels, modes, source, input, max_res
        ('gray_raw', ImageField(channels=1, write_mode='raw'), 7, 1, [1],
         gray, gray_in, None),
        ('gray_png', ImageField(channels=1, write_mode='png'), 7, 1, [2],
         gray, gray_in, None),
        ('gray_jpg', ImageField(channels=1, write_mode='jpg',
                                jpeg_quality=JPEG_QUALITY), 7, 1, [0],
         gray, gray_in, None),
        ('gray_png_max20', ImageField(channels=1, write_mode='png',
                                      max_resolution=20), 7, 1, [2],
         gray, gray_in, 20),
        # channels=2 (gray + alpha) is allowed by docs/format.md but not
        # accepted by ImageField (channels must be 1, 3 or 4): not covered
        ('rgba_png', ImageField(channels=4, write_mode='png'), 7, 4, [2],
         rgba, rgba, None),
        ('rgba_raw', ImageField(channels=4, write_mode='raw'), 7, 4, [1],
         rgba, rgba, None),
        # PNG is not expressible with type 2, so an RGB PNG field is type 7
        ('rgb_png', RGBImageField(write_mode='png'), 7, 3, [2],
         rgb, rgb, None),
        # what type 2 can express is written as type 2
        ('rgb_as_image', ImageField(channels=3, write_mode='raw'), 2, 3, [1],
         rgb, rgb, None),
    ]
    fields = {}
    expected = []
    npz = {}
    for name, field, tid, ch, modes, src, _, max_res in specs:
        fields[name] = field
        expected.append({'name': name, 'type_id': tid, 'channels': ch,
                         'modes': modes, 'jpeg_quality': JPEG_QUALITY})
        for i, img in enumerate(src):
            npz[f'{name}.{i}'] = resized(img, max_res)
    rows = [tuple(spec[6][i] for spec in specs) for i in range(len(sizes))]
    write('images_ext', fields, rows, expected, npz)


VECTORS = {
    'scalars': v_scalars,
    'empty': v_empty,
    'bytes_json_ndarray': v_bytes_json_ndarray,
    'torch': v_torch,
    'images_rgb': v_images_rgb,
    'images_ext': v_images_ext,
}

if __name__ == '__main__':
    names = sys.argv[1:] or list(VECTORS)
    for name in names:
        VECTORS[name]()
