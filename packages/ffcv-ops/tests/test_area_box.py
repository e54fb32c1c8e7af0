"""kernels/area_box.py (area averaging over a box with fractional edges) against a float64
numpy reference."""
import numpy as np
import pytest

from ffcv_ops.kernels.area_box import area_box, area_box_scratch_size


def reference(image, top, left, height, width, out_height, out_width):
    def weights(origin, length, count, limit):
        scale = length / count
        starts = origin + scale * np.arange(count)[:, None]
        pixels = np.arange(limit)[None, :]
        overlap = np.clip(np.minimum(starts + scale, pixels + 1) - np.maximum(starts, pixels), 0, None)
        return overlap / overlap.sum(axis=1, keepdims=True)
    rows = weights(top, height, out_height, image.shape[0])
    columns = weights(left, width, out_width, image.shape[1])
    out = np.einsum('dy,yxc,ex->dec', rows, image.astype(np.float64), columns)
    return np.floor(out + 0.5).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize('channels', [1, 3, 4])
def test_fractional_boxes_against_the_reference(channels):
    rng = np.random.default_rng(channels)
    for _ in range(40):
        rows, columns = int(rng.integers(8, 120)), int(rng.integers(8, 120))
        image = rng.integers(0, 256, (rows, columns, channels), dtype=np.uint8)
        out_height, out_width = int(rng.integers(1, rows // 2 + 1)), int(rng.integers(1, columns // 2 + 1))
        height = rng.uniform(out_height, rows)
        width = rng.uniform(out_width, columns)
        top, left = rng.uniform(0, rows - height), rng.uniform(0, columns - width)
        out = np.zeros((out_height, out_width, channels), np.uint8)
        area_box(image, top, left, height, width, out,
                 np.empty(area_box_scratch_size(columns, rows, out_height, out_width, channels), np.float32))
        expected = reference(image, top, left, height, width, out_height, out_width)
        difference = np.abs(out.astype(np.int16) - expected)
        assert difference.max() <= 1 and (difference > 0).mean() < 0.02, (top, left, height, width)


def test_whole_pixel_boxes_are_plain_block_means():
    image = np.arange(8 * 12 * 3, dtype=np.uint8).reshape(8, 12, 3)
    out = np.zeros((4, 3, 3), np.uint8)
    area_box(image, 0.0, 0.0, 8.0, 12.0, out, np.empty(area_box_scratch_size(12, 8, 4, 3, 3), np.float32))
    expected = np.floor(image.reshape(4, 2, 3, 4, 3).astype(np.float64).mean(axis=(1, 3)) + 0.5)
    np.testing.assert_array_equal(out, expected.astype(np.uint8))


def test_pixels_outside_the_box_do_not_count():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    framed = np.full((60, 70, 3), 255, np.uint8)
    framed[10:50, 10:60] = image
    scratch = np.empty(area_box_scratch_size(70, 60, 9, 11, 3), np.float32)
    inside, outside = np.zeros((9, 11, 3), np.uint8), np.zeros((9, 11, 3), np.uint8)
    area_box(image, 3.25, 4.5, 30.5, 40.25, inside, scratch)
    area_box(framed, 13.25, 14.5, 30.5, 40.25, outside, scratch)
    np.testing.assert_array_equal(inside, outside)
