"""The compiled JPEG path (kernels/jpeg.py, kernels/image_chunks.py, ffcv_ops.libjpeg) against
simplejpeg, which decodes with the same libjpeg-turbo settings, and against damaged data."""
import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
import simplejpeg
from ffcv_format.testing import photo_like_image
from numba import njit

from ffcv_ops.kernels import jpeg as K
from ffcv_ops.kernels.area_box import area_box_scratch_size
from ffcv_ops.kernels.image_chunks import decode_resized_crops, decode_whole_images
from ffcv_ops.kernels.resize import resize_area_scratch_size
from ffcv_ops.libjpeg import libjpeg, libjpeg_status

SPACES = {1: 'GRAY', 3: 'RGB'}


@pytest.fixture(scope='module')
def library():
    found = libjpeg()
    assert found is not None, libjpeg_status()      # Pillow is a dependency: it must be found
    return found


def encode(image, subsampling='420', progressive=False, quality=90):
    """A JPEG of ``image`` ((h, w, 1) or (h, w, 3) uint8): baseline through simplejpeg,
    progressive through OpenCV."""
    if progressive:
        pixels = image[:, :, 0] if image.shape[2] == 1 else image[:, :, ::-1]
        ok, data = cv2.imencode('.jpg', pixels, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return data.tobytes()
    if image.shape[2] == 1:
        return simplejpeg.encode_jpeg(image, quality, colorspace='GRAY', colorsubsampling='Gray')
    return simplejpeg.encode_jpeg(image, quality, colorsubsampling=subsampling)


def decode_full(data, channels, denom=1):
    """simplejpeg's decode, at 1/denom scale."""
    height, width = simplejpeg.decode_jpeg_header(data)[:2]
    return simplejpeg.decode_jpeg(data, SPACES[channels], min_height=-(-height // denom),
                                  min_width=-(-width // denom)).reshape(-(-height // denom), -(-width // denom),
                                                                        channels)


@njit(nogil=True)
def _region(context, functions, handlers, data, height, width, channels, denom, top, left, rows, columns, out):
    context_at, functions_at = np.uint64(context.ctypes.data), np.uint64(functions.ctypes.data)
    if K.open_decompressor(functions_at, context_at, np.uint64(handlers.ctypes.data)) != K.OK:
        return -1, 0
    code = K.decode_region(functions_at, context_at, np.uint64(data.ctypes.data), data.shape[0], height, width,
                           K.JCS_RGB if channels == 3 else K.JCS_GRAYSCALE, channels, denom, top, left, rows,
                           columns, np.uint64(out.ctypes.data), out.shape[1] * out.shape[2])
    first = K.load_u32(context_at + np.uint64(K.CROP_X))
    K.end_image(functions_at, context_at)
    K.close_decompressor(functions_at, context_at)
    return code, first


def region(library, data, height, width, channels, denom, top, left, rows, columns):
    """(code, first decoded column, rows decoded as an image of the scaled width)."""
    out = np.zeros((-(-height // denom), -(-width // denom), channels), np.uint8)
    context = np.zeros(K.CONTEXT_BYTES // 8, np.uint64)
    code, first = _region(context, library.functions, library.handlers, np.frombuffer(data, np.uint8).copy(),
                          height, width, channels, denom, top, left, rows, columns, out)
    return code, first, out


FORMATS = [('420', False, 3), ('422', False, 3), ('444', False, 3), ('420', True, 3), ('444', True, 3),
           ('Gray', False, 1), ('Gray', True, 1)]


@pytest.mark.parametrize('subsampling,progressive,channels', FORMATS)
@pytest.mark.parametrize('denom', [1, 2, 4, 8])
def test_a_region_is_the_same_pixels_as_the_full_decode(library, subsampling, progressive, channels, denom):
    rng = np.random.default_rng(hash((subsampling, progressive, denom)) % 2**32)
    image = photo_like_image(rng, 203, 317, channels)
    data = encode(image, subsampling, progressive)
    full = decode_full(data, channels, denom)
    height, width = full.shape[:2]
    for _ in range(12):
        top, left = int(rng.integers(0, height)), int(rng.integers(0, width))
        rows, columns = int(rng.integers(1, height - top + 1)), int(rng.integers(1, width - left + 1))
        # the kernels ask for a column more on each side (see image_chunks): the edge columns
        # of a partial decode are upsampled without their neighbours
        first, last = max(0, left - 1), min(width, left + columns + 1)
        code, start, out = region(library, data, 203, 317, channels, denom, top, first, rows, last - first)
        assert code == K.OK and start <= first
        np.testing.assert_array_equal(out[:rows, left - start:left - start + columns],
                                      full[top:top + rows, left:left + columns],
                                      err_msg=f"rows {top}+{rows}, columns {left}+{columns}")


def test_damaged_jpegs_are_reported_and_the_decompressor_goes_on(library):
    rng = np.random.default_rng(3)
    image = photo_like_image(rng, 120, 160, 3)
    data = encode(image)
    good = decode_full(data, 3)
    header_end = data.index(b'\xff\xda') + 20
    damaged = {
        'truncated': data[:len(data) // 2],
        'empty': b'',
        'not a JPEG': b'\x89PNG\r\n\x1a\n' + bytes(200),
        'no image after the header': data[:header_end],
        'garbage header': data[:2] + bytes(rng.integers(0, 256, 60, dtype=np.uint8)) + data[62:],
        'bytes flipped in the entropy data': data[:header_end] + bytes(b ^ 0x5A for b in data[header_end:header_end + 300])
                                             + data[header_end + 300:],
    }
    for name, bad in damaged.items():
        code, _, _ = region(library, bad, 120, 160, 3, 1, 0, 0, 120, 160)
        assert code == K.FAILED, name
        code, _, out = region(library, data, 120, 160, 3, 1, 0, 0, 120, 160)
        assert code == K.OK and np.array_equal(out, good), f"after {name}"


def test_a_jpeg_of_another_size_than_its_metadata_is_a_mismatch(library):
    data = encode(photo_like_image(np.random.default_rng(4), 40, 50, 3))
    assert region(library, data, 41, 50, 3, 1, 0, 0, 41, 50)[0] == K.MISMATCH
    assert region(library, data, 40, 49, 3, 1, 0, 0, 40, 49)[0] == K.MISMATCH
    assert region(library, data, 40, 50, 3, 1, 30, 0, 11, 50)[0] == K.MISMATCH   # rows past the bottom
    assert region(library, data, 40, 50, 3, 1, 0, 0, 40, 50)[0] == K.OK


def chunk(images_and_jpegs):
    jpegs = [j for _, j in images_and_jpegs]
    data = np.frombuffer(b''.join(jpegs), np.uint8).copy()
    sizes = np.array([len(j) for j in jpegs], np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    heights = np.array([i.shape[0] for i, _ in images_and_jpegs], np.int64)
    widths = np.array([i.shape[1] for i, _ in images_and_jpegs], np.int64)
    return data, starts, sizes, heights, widths


def python_scale_rule(crop_h, crop_w, out_h, out_w, max_denom):
    denom = 1
    while denom * 2 <= max_denom and crop_h >= out_h * denom * 2 and crop_w >= out_w * denom * 2:
        denom *= 2
    return denom


def area_matrix(origin, length, count, limit):
    """(count, limit): weight of source pixel j in output pixel d, the overlap of [j, j + 1)
    with [origin + d * s, origin + (d + 1) * s), s = length / count, rows normalised."""
    scale = length / count
    starts = origin + scale * np.arange(count)[:, None]
    pixels = np.arange(limit)[None, :]
    overlap = np.clip(np.minimum(starts + scale, pixels + 1) - np.maximum(starts, pixels), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def crop_reference(jpeg, box, out_size, channels, max_denom):
    """simplejpeg's decode at the scale the rule picks; at full scale OpenCV's INTER_AREA of
    the crop; at a reduced scale the area average over the crop's box at that scale, its
    edges fractional (float64, rounded half up)."""
    top, left, crop_h, crop_w = (int(v) for v in box)
    denom = python_scale_rule(crop_h, crop_w, out_size[0], out_size[1], max_denom)
    image = decode_full(jpeg, channels, denom)
    if denom == 1:
        out = cv2.resize(image[top:top + crop_h, left:left + crop_w], out_size[::-1], interpolation=cv2.INTER_AREA)
        return out.reshape(*out_size, channels), denom
    rows = area_matrix(top / denom, crop_h / denom, out_size[0], image.shape[0])
    columns = area_matrix(left / denom, crop_w / denom, out_size[1], image.shape[1])
    out = np.einsum('dy,yxc,ex->dec', rows, image.astype(np.float64), columns)
    return np.floor(out + 0.5).clip(0, 255).astype(np.uint8), denom


def assert_close_to_reference(actual, expected, message):
    """The float32 kernel against the float64 reference: at most one level apart, rarely."""
    difference = np.abs(actual.astype(np.int16) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01, (message, difference.max(),
                                                                    (difference > 0).mean())


@pytest.mark.parametrize('channels', [3, 1])
@pytest.mark.parametrize('max_denom', [1, 8])
def test_resized_crops_are_opencvs_resize_of_the_decoded_crop(library, channels, max_denom):
    rng = np.random.default_rng(10 + channels + max_denom)
    out_size = (56, 48)
    images = [photo_like_image(rng, int(rng.integers(40, 500)), int(rng.integers(40, 500)), channels)
              for _ in range(24)]
    images[1] = photo_like_image(rng, 470, 420, channels)          # whole: shrunk more than 8x
    items = [(image, encode(image, ['420', '444', '422'][k % 3] if channels == 3 else 'Gray', progressive=k % 4 == 3))
             for k, image in enumerate(images)]
    data, starts, sizes, heights, widths = chunk(items)
    boxes = np.empty((len(items), 4), np.int64)
    for k, (h, w) in enumerate(zip(heights, widths)):
        crop_h, crop_w = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        boxes[k] = (rng.integers(0, h - crop_h + 1), rng.integers(0, w - crop_w + 1), crop_h, crop_w)
    boxes[0] = (0, 0, heights[0], widths[0])                      # whole image
    boxes[1] = (0, 0, heights[1], widths[1])
    destination = np.zeros((len(items), *out_size, channels), np.uint8)
    status = np.full(len(items), 99, np.uint8)
    left_out = decode_resized_crops(library.functions, library.handlers, np.zeros(K.CONTEXT_BYTES // 8, np.uint64),
                                    data, np.zeros(len(items), np.uint8), starts, sizes, heights, widths, boxes,
                                    channels, max_denom, np.empty(int((heights * widths).max()) * channels, np.uint8),
                                    np.empty(resize_area_scratch_size(int(widths.max()), out_size[1], channels),
                                             np.float32),
                                    np.empty(area_box_scratch_size(int(widths.max()), int(heights.max()), *out_size,
                                                                   channels), np.float32), destination, status)
    assert left_out == 0 and not status.any()
    scales = set()
    for k, (_, jpeg) in enumerate(items):
        expected, denom = crop_reference(jpeg, boxes[k], out_size, channels, max_denom)
        scales.add(denom)
        if denom == 1:    # OpenCV's resize, bit for bit
            np.testing.assert_array_equal(destination[k], expected, err_msg=f"image {k}, box {boxes[k]}")
        else:
            assert_close_to_reference(destination[k], expected, f"image {k}, box {boxes[k]}, 1/{denom}")
    assert scales == ({1} if max_denom == 1 else {1, 2, 4, 8})      # every scale was exercised


def test_what_the_kernel_cannot_decode_is_left_to_the_caller(library):
    rng = np.random.default_rng(12)
    images = [photo_like_image(rng, 60, 70, 3) for _ in range(5)]
    jpegs = [encode(i) for i in images]
    jpegs[1] = jpegs[1][:len(jpegs[1]) // 3]                                 # truncated
    ok, png = cv2.imencode('.png', images[2])
    jpegs[2] = png.tobytes()
    data, starts, sizes, heights, widths = chunk(list(zip(images, jpegs)))
    modes = np.array([0, 0, 2, 0, 0], np.uint8)
    heights[3] = 61                                                          # metadata says otherwise
    boxes = np.array([(0, 0, 60, 70), (0, 0, 60, 70), (0, 0, 60, 70), (0, 0, 60, 70), (50, 0, 20, 70)], np.int64)
    destination = np.zeros((5, 30, 30, 3), np.uint8)
    status = np.zeros(5, np.uint8)
    left_out = decode_resized_crops(library.functions, library.handlers, np.zeros(K.CONTEXT_BYTES // 8, np.uint64),
                                    data, modes, starts, sizes, heights, widths, boxes, 3, 8,
                                    np.empty(61 * 70 * 3, np.uint8),
                                    np.empty(resize_area_scratch_size(70, 30, 3), np.float32),
                                    np.empty(area_box_scratch_size(70, 61, 30, 30, 3), np.float32), destination, status)
    assert status.tolist() == [K.OK, K.FAILED, K.NOT_HERE, K.MISMATCH, K.NOT_HERE]   # the last box is outside
    assert left_out == 4
    assert_close_to_reference(destination[0], crop_reference(jpegs[0], boxes[0], (30, 30), 3, 8)[0], 'image 0')


def test_whole_images_straight_into_the_batch(library):
    rng = np.random.default_rng(13)
    images = [photo_like_image(rng, 33, 45, 3) for _ in range(6)]
    jpegs = [encode(i, ['420', '444'][k % 2], progressive=k == 5) for k, i in enumerate(images)]
    raw = images[4].tobytes()
    jpegs[4] = raw
    data, starts, sizes, heights, widths = chunk(list(zip(images, jpegs)))
    modes = np.array([0, 0, 0, 0, 1, 0], np.uint8)
    destination = np.zeros((6, 33, 45, 3), np.uint8)
    status = np.full(6, 9, np.uint8)
    assert decode_whole_images(library.functions, library.handlers, np.zeros(K.CONTEXT_BYTES // 8, np.uint64), data,
                               modes, starts, sizes, heights, widths, 3, destination, status) == 0
    assert not status.any()
    for k, jpeg in enumerate(jpegs):
        expected = images[4] if k == 4 else decode_full(jpeg, 3)
        np.testing.assert_array_equal(destination[k], expected)


def test_threads_decode_at_once_with_their_own_contexts(library):
    rng = np.random.default_rng(14)
    images = [photo_like_image(rng, 150, 180, 3) for _ in range(16)]
    data, starts, sizes, heights, widths = chunk([(i, encode(i)) for i in images])
    boxes = np.array([(10, 20, 120, 140)] * 16, np.int64)

    def run(out):
        status = np.zeros(16, np.uint8)
        for _ in range(5):
            decode_resized_crops(library.functions, library.handlers, np.zeros(K.CONTEXT_BYTES // 8, np.uint64),
                                 data, np.zeros(16, np.uint8), starts, sizes, heights, widths, boxes, 3, 8,
                                 np.empty(150 * 180 * 3, np.uint8),
                                 np.empty(resize_area_scratch_size(180, 32, 3), np.float32),
                                 np.empty(area_box_scratch_size(180, 150, 32, 32, 3), np.float32), out, status)
        assert not status.any()

    alone = np.zeros((16, 32, 32, 3), np.uint8)
    run(alone)
    outs = [np.zeros_like(alone) for _ in range(4)]
    threads = [threading.Thread(target=run, args=(o,)) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for o in outs:
        np.testing.assert_array_equal(o, alone)


def _status_in_subprocess(environment):
    code = "from ffcv_ops.libjpeg import libjpeg_status; print(libjpeg_status())"
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, **environment))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_ffcv_libjpeg_chooses_or_turns_off_the_library(library):
    assert _status_in_subprocess({'FFCV_LIBJPEG': 'off'}).startswith(
        'JPEGs decoded through simplejpeg, one call per image: FFCV_LIBJPEG=off')
    assert _status_in_subprocess({'FFCV_LIBJPEG': library.path}).startswith('compiled, GIL-free JPEG decoding with')
    missing = _status_in_subprocess({'FFCV_LIBJPEG': '/nonexistent/libjpeg.so.62'})
    assert missing.startswith('JPEGs decoded through simplejpeg') and '/nonexistent/libjpeg.so.62' in missing
    # a library without libjpeg's functions: refused, with the reason
    import ctypes.util
    other = ctypes.util.find_library('z') or ctypes.util.find_library('m')
    if other:
        refused = _status_in_subprocess({'FFCV_LIBJPEG': other})
        assert refused.startswith('JPEGs decoded through simplejpeg') and 'jpeg_' in refused
