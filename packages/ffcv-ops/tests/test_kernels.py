"""The compiled kernels on their own: crop boxes over many draws, counter-based randomness."""
import math

import numpy as np
import pytest

from ffcv_ops.kernels.crop import center_crop_boxes, random_resized_crop_box, random_resized_crop_boxes
from ffcv_ops.kernels.random import (derive_seed, mix64, mix64_py, sample_key, sample_key_py, uniform,
                                     uniform_py)

DRAWS = 20000


def boxes(height, width, scale, ratio, seed=123, n=DRAWS):
    heights = np.full(n, height, np.int64)
    widths = np.full(n, width, np.int64)
    out = np.empty((n, 4), np.int64)
    random_resized_crop_boxes(heights, widths, np.arange(n, dtype=np.int64), np.uint64(seed), scale[0],
                              scale[1], math.log(ratio[0]), math.log(ratio[1]), out)
    return out


def check_inside(out, height, width):
    top, left, h, w = out.T
    assert (h >= 1).all() and (w >= 1).all()
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= height).all() and (left + w <= width).all()


def test_random_resized_crop_respects_scale_and_ratio():
    height, width = 300, 400
    out = boxes(height, width, (0.08, 1.0), (3 / 4, 4 / 3))
    check_inside(out, height, width)
    top, left, h, w = out.T.astype(np.float64)
    area = h * w / (height * width)
    aspect = w / h
    # rounding each side to a pixel moves area and aspect a little
    assert area.min() >= 0.08 * 0.98 and area.max() <= 1.0
    assert aspect.min() >= 0.75 * 0.99 and aspect.max() <= 4 / 3 * 1.01
    # the same distribution as torchvision's rule simulated with numpy's generator
    reference = torchvision_rule_areas(height, width, (0.08, 1.0), (3 / 4, 4 / 3), DRAWS)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(np.quantile(area, q) - np.quantile(reference, q)) < 0.015, q
    assert (aspect < 0.85).mean() > 0.1 and (aspect > 1.2).mean() > 0.1


def torchvision_rule_areas(height, width, scale, ratio, n):
    """Crop areas (fraction of the image) from torchvision's rule, drawn with numpy."""
    rng = np.random.default_rng(0)
    areas = np.empty(n)
    for k in range(n):
        for _ in range(10):
            target = height * width * rng.uniform(*scale)
            aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                break
        else:
            h, w = height, width    # the ratio range contains this image's ratio
        areas[k] = h * w / (height * width)
    return areas


def test_random_resized_crop_draws_are_uniform_when_every_try_fits():
    # with a small scale range every first try fits: area uniform in scale, log-aspect
    # uniform in log(ratio), position uniform over the valid range
    height, width = 500, 500
    out = boxes(height, width, (0.2, 0.3), (3 / 4, 4 / 3))
    check_inside(out, height, width)
    top, left, h, w = out.T.astype(np.float64)
    area = h * w / (height * width)
    log_aspect = np.log(w / h)
    assert abs(area.mean() - 0.25) < 0.003
    assert abs(np.quantile(area, 0.25) - 0.225) < 0.005 and abs(np.quantile(area, 0.75) - 0.275) < 0.005
    assert abs(log_aspect.mean()) < 0.005
    half_range = math.log(4 / 3)
    assert abs(np.quantile(log_aspect, 0.75) - half_range / 2) < 0.01
    assert abs((top / (height - h)).mean() - 0.5) < 0.01
    assert abs((left / (width - w)).mean() - 0.5) < 0.01
    assert np.corrcoef(top, left)[0, 1] < 0.05


@pytest.mark.parametrize('ratio,expected_hw', [((2.0, 3.0), (50, 100)), ((0.25, 0.5), (100, 50))])
def test_random_resized_crop_falls_back_to_a_central_crop(ratio, expected_hw):
    # no aspect in range fits a full-area crop of a square: the central crop, ratio clamped
    out = boxes(100, 100, (1.0, 1.0), ratio, n=50)
    h, w = expected_hw
    assert (out == [(100 - h) // 2, (100 - w) // 2, h, w]).all()


def test_whole_image_when_nothing_else_fits():
    out = boxes(37, 53, (1.0, 1.0), (53 / 37, 53 / 37), n=20)
    assert (out == [0, 0, 37, 53]).all()


def test_batch_kernel_agrees_with_the_box_of_each_sample():
    rng = np.random.default_rng(0)
    heights = rng.integers(1, 300, 200).astype(np.int64)
    widths = rng.integers(1, 300, 200).astype(np.int64)
    indices = rng.permutation(10**6)[:200].astype(np.int64)
    out = np.empty((200, 4), np.int64)
    random_resized_crop_boxes(heights, widths, indices, np.uint64(99), 0.08, 1.0, math.log(3 / 4),
                              math.log(4 / 3), out)
    for k in range(200):
        key = np.uint64(sample_key(np.uint64(99), indices[k]))
        assert tuple(out[k]) == random_resized_crop_box(heights[k], widths[k], key, 0.08, 1.0,
                                                        math.log(3 / 4), math.log(4 / 3))
        assert out[k, 0] + out[k, 2] <= heights[k] and out[k, 1] + out[k, 3] <= widths[k]


def test_center_crop_boxes():
    heights = np.array([100, 256, 31, 1, 50], np.int64)
    widths = np.array([200, 256, 90, 7, 49], np.int64)
    out = np.empty((5, 4), np.int64)
    center_crop_boxes(heights, widths, 0.875, out)
    for (top, left, h, w), H, W in zip(out, heights, widths):
        side = max(1, int(0.875 * min(H, W)))     # FFCV 1.0's rule: truncated, not rounded
        assert (h, w) == (side, side)
        assert (top, left) == ((H - side) // 2, (W - side) // 2)
    # 0.875 * 100 = 87.5: FFCV 1.0 crops 87 pixels (rounding would give 88); 0.875 * 31 = 27.1
    assert out[0].tolist() == [6, 56, 87, 87] and out[2].tolist() == [2, 31, 27, 27]


def test_counter_based_randomness_matches_its_python_twin():
    for seed in [0, 1, 2**64 - 1, derive_seed(3, 4, 5)]:
        for index in [0, 1, 12345, 2**40]:
            key = sample_key(np.uint64(seed), np.int64(index))
            assert key == sample_key_py(seed, index)
            for k in range(4):
                assert uniform(np.uint64(key), k) == uniform_py(key, k)
    assert mix64(np.uint64(2**64 - 1)) == mix64_py(2**64 - 1)


def test_uniform_draws_look_uniform_and_independent():
    keys = [sample_key_py(derive_seed(1, 2), i) for i in range(5000)]
    first = np.array([uniform_py(k, 0) for k in keys])
    second = np.array([uniform_py(k, 1) for k in keys])
    assert first.min() >= 0 and first.max() < 1
    assert abs(first.mean() - 0.5) < 0.02 and abs(first.std() - math.sqrt(1 / 12)) < 0.01
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.05
    assert abs(np.corrcoef(first[:-1], first[1:])[0, 1]) < 0.05
    hist = np.histogram(first, bins=10, range=(0, 1))[0]
    assert hist.min() > 400 and hist.max() < 600


def test_derived_seeds_differ_for_every_part():
    seeds = {derive_seed(s, e, p, k) for s in range(3) for e in range(3) for p in range(2) for k in range(3)}
    assert len(seeds) == 54
    assert derive_seed(1, 2) != derive_seed(2, 1)


@pytest.mark.parametrize('channels', [1, 2, 3, 4])
@pytest.mark.parametrize('width', [1, 7, 16, 17, 31, 32, 33, 224, 250])
def test_mirror_reverses_pixels_in_blocks_and_tails(channels, width):
    from ffcv_ops.kernels.mirror import mirror_chosen
    rng = np.random.default_rng(width * 10 + channels)
    images = rng.integers(0, 256, (6, 5, width, channels), dtype=np.uint8)
    chosen = np.array([True, False, True, True, False, True])
    expected = images.copy()
    expected[chosen] = expected[chosen][:, :, ::-1]
    row = np.full(width * channels + 64, 7, np.uint8)     # scratch: only its first w*C bytes are used
    mirror_chosen(images, chosen, row)
    np.testing.assert_array_equal(images, expected)
