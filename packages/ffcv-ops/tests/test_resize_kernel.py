"""``kernels/resize.py``'s ``resize_area`` against ``cv2.resize(..., INTER_AREA)``.

Sizes cover each of OpenCV's routes: shrinking by integer factors (2x2 and others, and
1x1: a copy), shrinking by other factors (few and many source pixels per output pixel,
ratios that make exact .5 ties), enlarging, and mixed (one axis shrinks, the other grows);
1x1 outputs and sources, crops at every edge of their source, 1, 3 and 4 channels, random
pixels and photo-like ones (smooth gradients plus noise), destinations that are views into
a batch. What we observe (OpenCV 5.0.0 and 4.10): every case is bit-exact - the kernel
re-enacts OpenCV's arithmetic. The bounds asserted are what the task allows: at most 1 of
difference, and under 0.1% of the values differing at all (over all the cases together).
"""
import cv2
import numpy as np
import pytest

from ffcv_ops.kernels.resize import resize_area, resize_area_scratch_size

MAX_DIFF = 1                # observed: 0
MAX_DIFFERING = 1e-3        # fraction of values that differ at all; observed: 0

# (crop height, crop width, output height, output width)
FIXED = [
    (350, 300, 224, 224),   # a typical random crop: shrink by 1.56 x 1.34
    (300, 350, 224, 224),
    (256, 192, 224, 224),   # mixed: shrink rows, enlarge columns
    (192, 256, 224, 224),
    (448, 448, 224, 224),   # 2x2
    (448, 224, 224, 224),   # 2 x 1
    (224, 672, 224, 224),   # 1 x 3
    (300, 300, 100, 100),   # 3x3
    (224, 224, 224, 224),   # 1x1: a copy
    (120, 100, 224, 224),   # enlarge
    (1, 1, 224, 224),
    (2, 3, 50, 7),
    (4, 4, 3, 3),           # scale 4/3: weights in quarters, sums in sixteenths: exact ties
    (16, 12, 12, 9),
    (400, 300, 300, 225),
    (100, 100, 7, 7),       # many source pixels per output pixel
    (1000, 30, 10, 20),     # mixed, strongly
    (13, 17, 1, 1),         # 1x1 output
    (1, 17, 1, 5),
    (17, 1, 5, 1),
    (9, 1, 3, 1),
    (5, 5, 2, 3),
    (3, 2, 2, 3),
    (7, 10, 3, 4),
    (10, 7, 4, 3),
    (60, 60, 224, 30),
    (224, 30, 60, 60),
    (30, 45, 100, 100),
]


def random_cases(rng, n):
    cases = []
    for k in range(n):
        h, w = (int(v) for v in rng.integers(1, 160, 2))
        if k % 4 == 0:          # integer factors
            fy, fx = (int(v) for v in rng.integers(1, 5, 2))
            oh, ow = max(1, h // fy), max(1, w // fx)
            h, w = oh * fy, ow * fx
        else:
            oh, ow = (int(v) for v in rng.integers(1, 160, 2))
        cases.append((h, w, oh, ow))
    return cases


def photo_like(rng, height, width, channels):
    """A smooth gradient in a random direction, a slow wave, and noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = []
    for _ in range(channels):
        gx, gy = rng.uniform(-1.5, 1.5, 2)
        wave = 40 * np.sin(rng.uniform(0.01, 0.2) * x + rng.uniform(0.01, 0.2) * y + rng.uniform(0, 6.3))
        planes.append(rng.uniform(60, 190) + gx * (x - width / 2) + gy * (y - height / 2) + wave
                      + rng.normal(0, 6, (height, width)))
    return np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)


def opencv(crop, out_height, out_width):
    out = cv2.resize(np.ascontiguousarray(crop), (out_width, out_height), interpolation=cv2.INTER_AREA)
    return out.reshape(out_height, out_width, crop.shape[2])


def scratch_for(width, out_width, channels):
    return np.empty(resize_area_scratch_size(width, out_width, channels), np.float32)


def compare(results):
    """results: (kernel output, OpenCV's) pairs."""
    differing = total = 0
    for ours, theirs in results:
        diff = np.abs(ours.astype(np.int16) - theirs)
        assert diff.max() <= MAX_DIFF
        differing += int((diff > 0).sum())
        total += diff.size
    assert differing <= MAX_DIFFERING * total, f'{differing} of {total} values differ'


@pytest.mark.parametrize('channels', [1, 3, 4])
@pytest.mark.parametrize('kind', ['random', 'photo'])
def test_matches_opencv(channels, kind):
    rng = np.random.default_rng(channels * 10 + (kind == 'photo'))
    results = []
    for h, w, oh, ow in FIXED + random_cases(rng, 150):
        # the crop somewhere inside a larger source, against one of its edges now and then
        margin_top, margin_left = (int(v) for v in rng.integers(0, 4, 2))
        margin_bottom, margin_right = (int(v) for v in rng.integers(0, 4, 2))
        H, W = h + margin_top + margin_bottom, w + margin_left + margin_right
        if kind == 'random':
            source = rng.integers(0, 256, (H, W, channels), dtype=np.uint8)
        else:
            source = photo_like(rng, H, W, channels)
        out = np.empty((oh, ow, channels), np.uint8)
        resize_area(source, margin_top, margin_left, h, w, out, scratch_for(w, ow, channels))
        crop = source[margin_top:margin_top + h, margin_left:margin_left + w]
        results.append((out, opencv(crop, oh, ow)))
    compare(results)


@pytest.mark.parametrize('channels', [1, 3, 4])
def test_views_in_and_out(channels):
    """The source a view of part of a larger decode buffer (rows not contiguous with each
    other), the destination ``batch[i]``: its neighbours untouched; one scratch, sized for
    the widest crop, reused by every call."""
    rng = np.random.default_rng(channels)
    buffer = rng.integers(0, 256, (600, 700, channels), dtype=np.uint8)
    batch = np.full((5, 224, 224, channels), 77, np.uint8)
    scratch = scratch_for(700, 224, channels)
    results = []
    for i, (H, W, top, left, h, w) in enumerate([(500, 375, 100, 30, 350, 300), (256, 192, 0, 0, 256, 192),
                                                 (500, 475, 52, 27, 448, 448), (300, 200, 180, 100, 120, 100),
                                                 (600, 700, 0, 0, 600, 700)]):
        source = buffer[:H, :W]             # the image decoded into the top left of the buffer
        resize_area(source, top, left, h, w, batch[i], scratch)
        results.append((batch[i], opencv(source[top:top + h, left:left + w], 224, 224)))
    compare(results)
    # a destination shaped like part of a batch row: the bytes around it untouched
    wide = np.full((30, 40, channels), 77, np.uint8)
    resize_area(buffer, 0, 0, 50, 60, wide[5:25, 10:30], scratch)
    assert (wide[:5] == 77).all() and (wide[25:] == 77).all()
    assert (wide[:, :10] == 77).all() and (wide[:, 30:] == 77).all()
    compare([(wide[5:25, 10:30], opencv(buffer[:50, :60], 20, 20))])


@pytest.mark.parametrize('channels', [1, 3])
def test_outside_of_the_crop_never_read(channels):
    """The pixels around the crop (255, then 0) change nothing: the result is that of the
    crop copied to its own array, exactly, for every route and crops against each edge."""
    rng = np.random.default_rng(5)
    sizes = FIXED + random_cases(rng, 60)
    for h, w, oh, ow in sizes:
        crop = photo_like(rng, h, w, channels)
        alone = np.empty((oh, ow, channels), np.uint8)
        resize_area(crop, 0, 0, h, w, alone, scratch_for(w, ow, channels))
        for top, left, bottom, right in [(2, 3, 1, 4), (0, 0, 3, 2), (3, 2, 0, 0), (0, 5, 0, 0)]:
            for fill in (255, 0):
                source = np.full((h + top + bottom, w + left + right, channels), fill, np.uint8)
                source[top:top + h, left:left + w] = crop
                out = np.empty((oh, ow, channels), np.uint8)
                resize_area(source, top, left, h, w, out, scratch_for(w, ow, channels))
                np.testing.assert_array_equal(out, alone)


def test_scratch_contents_do_not_matter():
    """A scratch full of garbage (NaNs, huge numbers), or left by a call on other sizes,
    gives the same result."""
    rng = np.random.default_rng(9)
    source = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    for h, w, oh, ow in [(150, 130, 97, 71), (40, 30, 97, 71), (196, 142, 98, 71)]:
        clean = np.empty((oh, ow, 3), np.uint8)
        resize_area(source, 3, 4, h, w, clean, np.zeros(resize_area_scratch_size(w, ow, 3), np.float32))
        for garbage in (np.nan, 3e38, -1.0):
            scratch = np.full(resize_area_scratch_size(200, 100, 3), garbage, np.float32)
            out = np.empty((oh, ow, 3), np.uint8)
            resize_area(source, 3, 4, h, w, out, scratch)
            np.testing.assert_array_equal(out, clean)


def test_bad_arguments_raise():
    source = np.zeros((20, 30, 3), np.uint8)
    out = np.zeros((10, 10, 3), np.uint8)
    scratch = scratch_for(30, 10, 3)
    with pytest.raises(ValueError):         # scratch too small
        resize_area(source, 0, 0, 20, 30, out, scratch[:resize_area_scratch_size(30, 10, 3) - 1])
    with pytest.raises(ValueError):         # crop outside the source
        resize_area(source, 5, 0, 20, 30, out, scratch)
    with pytest.raises(ValueError):         # empty crop
        resize_area(source, 0, 0, 0, 30, out, scratch)
    with pytest.raises(ValueError):         # channel counts differ
        resize_area(source, 0, 0, 20, 30, np.zeros((10, 10, 1), np.uint8), scratch)
    with pytest.raises(ValueError):         # destination rows not contiguous
        resize_area(source, 0, 0, 20, 30, np.zeros((10, 20, 3), np.uint8)[:, ::2], scratch)
