"""RandomVerticalFlip, RandomCutout, RandomErasing, Solarization, RandomGrayscale and
GaussianBlur against numpy references of their formulas computed here (the random draws
taken from ``kernels/random.py`` as the kernels take them), on edge cases (a batch of one,
1x1 and odd-sized images, p = 0 and 1, 1 and 3 channels), and through the conformance kit."""
import math
import statistics

import numpy as np
import pytest
from ffcv_format import ImageField, RGBImageField
from ffcv_format.testing import write_dataset

from ffcv_ops import SimpleRGBImageDecoder, ToTensor
from ffcv_ops.kernels.blur import reflect_index
from ffcv_ops.kernels.erasing import NORMAL_QUANTILES
from ffcv_ops.kernels.random import mix64_py, sample_key, standard_normal, uniform
from ffcv_ops.testing import OperationTests, make_pipeline, run_pipeline
from ffcv_ops.transforms.blur import GaussianBlur
from ffcv_ops.transforms.erasing import IMAGENET_MEAN, IMAGENET_STD, RandomCutout, RandomErasing
from ffcv_ops.transforms.pixel import RandomGrayscale, Solarization
from ffcv_ops.transforms.vertical_flip import RandomVerticalFlip

COUNT = 48                                    # images per file
SHAPES = [(1, 1), (7, 5), (16, 21)]           # (height, width): a single pixel, odd sizes, wider
CHANNELS = [1, 3]


@pytest.fixture(scope='module')
def image_files(tmp_path_factory):
    """``{(height, width, channels): (reader, originals)}``: raw uint8 images (values 1..255)."""
    rng = np.random.default_rng(13)
    files = {}
    for height, width in SHAPES:
        for channels in CHANNELS:
            images = rng.integers(1, 256, (COUNT, height, width, channels), dtype=np.uint8)
            field = RGBImageField(write_mode='raw') if channels == 3 else ImageField(write_mode='raw', channels=1)
            path = tmp_path_factory.mktemp('edge') / f'{height}x{width}x{channels}.beton'
            reader = write_dataset(path, {'image': field}, [(image,) for image in images])
            stored = np.stack([reader.read_field(i, 'image') for i in range(COUNT)])
            files[height, width, channels] = (reader, stored.reshape(images.shape))
    return files


ALL_FILES = [(h, w, c) for h, w in SHAPES for c in CHANNELS]


def run_op(reader, op, indices, seed=0, epoch=0, **options):
    return run_pipeline(reader, 'image', [SimpleRGBImageDecoder(), op], np.asarray(indices, np.int64),
                        seed=seed, epoch=epoch, **options)


def keys_of(reader, op, indices, seed=0, epoch=0):
    """The per-sample random keys the pipeline gives ``op`` (position 1, after the decoder)."""
    op_seed = make_pipeline(reader, 'image', [SimpleRGBImageDecoder(), op]).op_seeds(seed, epoch, 0)[1]
    return [np.uint64(sample_key(np.uint64(op_seed), np.int64(i))) for i in indices]


def check_against_reference(image_files, shape, make_op, reference, seed=5, indices=None):
    """Run ``make_op()`` on the whole file, on a batch of one, and on a shuffled batch in
    chunks on two threads; each output image must equal ``reference(original, key)``."""
    reader, originals = image_files[shape]
    indices = np.arange(COUNT) if indices is None else np.asarray(indices)
    out = run_op(reader, make_op(), indices, seed=seed)
    keys = keys_of(reader, make_op(), indices, seed=seed)
    for row, (index, key) in enumerate(zip(indices, keys)):
        expected = reference(originals[index].copy(), key)
        np.testing.assert_array_equal(out[row], expected, err_msg=f"{make_op()!r}, {shape}, sample {index}")
    single = run_op(reader, make_op(), indices[-1:], seed=seed)            # a batch of one
    np.testing.assert_array_equal(single[0], out[-1])
    order = np.random.default_rng(3).permutation(len(indices))
    shuffled = run_op(reader, make_op(), indices[order], seed=seed, chunk=5, workers=2)
    np.testing.assert_array_equal(shuffled, out[order])
    return out, originals[indices]


def applied(out, originals):
    return (out != originals).any(axis=(1, 2, 3))


# ------------------------------------------------------------ RandomVerticalFlip


def flip_reference(flip_prob):
    def reference(image, key):
        return image[::-1] if uniform(key, 0) < flip_prob else image
    return reference


@pytest.mark.parametrize('shape', ALL_FILES)
@pytest.mark.parametrize('flip_prob', [0.0, 0.5, 1.0])
def test_vertical_flip_matches_the_reference(image_files, shape, flip_prob):
    out, originals = check_against_reference(image_files, shape, lambda: RandomVerticalFlip(flip_prob),
                                             flip_reference(flip_prob))
    if flip_prob == 0.0:
        np.testing.assert_array_equal(out, originals)
    if flip_prob == 1.0:
        np.testing.assert_array_equal(out, originals[:, ::-1])
    if flip_prob == 0.5 and shape[0] > 1:
        assert 0.2 < applied(out, originals).mean() < 0.8


@pytest.mark.parametrize('width,channels', [(8, 1), (4, 1), (2, 1), (8, 3), (4, 3)])
def test_vertical_flip_swaps_rows_as_wide_words(tmp_path, width, channels):
    """Rows of 8, 4, 2 (and 24, 12) bytes are swapped as 8-, 4- and 2-byte words."""
    images = np.random.default_rng(width).integers(0, 256, (6, 5, width, channels), dtype=np.uint8)
    field = RGBImageField(write_mode='raw') if channels == 3 else ImageField(write_mode='raw', channels=1)
    reader = write_dataset(tmp_path / 'words.beton', {'image': field}, [(image,) for image in images])
    np.testing.assert_array_equal(run_op(reader, RandomVerticalFlip(1.0), np.arange(6)), images[:, ::-1])


def test_vertical_flip_draws_differ_by_seed_and_epoch(image_files):
    reader, originals = image_files[16, 21, 3]
    first = applied(run_op(reader, RandomVerticalFlip(), np.arange(COUNT), seed=1), originals)
    other_seed = applied(run_op(reader, RandomVerticalFlip(), np.arange(COUNT), seed=2), originals)
    other_epoch = applied(run_op(reader, RandomVerticalFlip(), np.arange(COUNT), seed=1, epoch=1), originals)
    assert (first != other_seed).any() and (first != other_epoch).any()


@pytest.mark.parametrize('flip_prob', [-0.1, 1.5, 'half', None])
def test_vertical_flip_probability_is_checked(flip_prob):
    with pytest.raises(ValueError, match=r"RandomVerticalFlip flip_prob must be a probability in \[0, 1\]"):
        RandomVerticalFlip(flip_prob)


def test_vertical_flip_needs_numpy_images(image_files):
    reader, _ = image_files[7, 5, 3]
    with pytest.raises(ValueError, match=r"RandomVerticalFlip works on numpy image batches"):
        run_pipeline(reader, 'image', [SimpleRGBImageDecoder(), ToTensor(), RandomVerticalFlip()], np.arange(4))


# ------------------------------------------------------------ RandomCutout


def cutout_reference(prob, size, fill):
    def reference(image, key):
        if not uniform(key, 0) < prob:
            return image
        height, width = image.shape[:2]
        cy, cx = int(uniform(key, 1) * height), int(uniform(key, 2) * width)
        top, left = cy - size // 2, cx - size // 2
        image[max(0, top):max(0, top + size), max(0, left):max(0, left + size)] = fill
        return image
    return reference


@pytest.mark.parametrize('shape', ALL_FILES)
@pytest.mark.parametrize('prob,size', [(0.0, 3), (0.5, 3), (1.0, 1), (1.0, 4), (1.0, 50)])
def test_random_cutout_matches_the_reference(image_files, shape, prob, size):
    channels = shape[2]
    fill = (0, 128, 255) if channels == 3 else (0,)
    out, originals = check_against_reference(image_files, shape, lambda: RandomCutout(prob, size, fill),
                                             cutout_reference(prob, size, np.array(fill, np.uint8)))
    changed = applied(out, originals)
    if prob == 0.0:
        assert not changed.any()
    elif prob == 1.0:
        assert changed.all()                # pixels are never 0: every square shows
        if size == 50:
            assert (out == np.array(fill, np.uint8)).all()   # a square wider than the image covers it
    else:
        assert 0.2 < changed.mean() < 0.8


def test_random_cutout_one_fill_value_fits_any_channel_count(image_files):
    reader, originals = image_files[7, 5, 1]
    out = run_op(reader, RandomCutout(1.0, 50), np.arange(4))
    assert (out == 0).all()                 # the default (0, 0, 0) on 1-channel images


@pytest.mark.parametrize('kwargs,message', [
    (dict(prob=2, crop_size=3), 'prob must be a probability'),
    (dict(prob=0.5, crop_size=0), 'crop_size must be a positive integer'),
    (dict(prob=0.5, crop_size=2.5), 'crop_size must be a positive integer'),
    (dict(prob=0.5, crop_size=3, fill=(0, 300, 0)), r'fill must be integers in 0\.\.255'),
])
def test_random_cutout_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=f"RandomCutout {message}"):
        RandomCutout(**kwargs)


def test_random_cutout_fill_must_match_the_channels(image_files):
    reader, _ = image_files[7, 5, 3]
    with pytest.raises(ValueError, match="RandomCutout fill has 2 values, the images have 3 channels"):
        run_op(reader, RandomCutout(0.5, 2, (1, 2)), np.arange(3))


# ------------------------------------------------------------ RandomErasing


def rounded_uint8(value):
    return np.uint8(np.floor(np.clip(value, 0.0, 255.0) + 0.5))


GOLDEN = 0x9E3779B97F4A7C15


def noise_table():
    """The noise fill's values, as documented: the 4096 normal quantiles at (i + 0.5) / 4096,
    symmetric, divided by their root mean square."""
    normal = statistics.NormalDist()
    upper = [normal.inv_cdf((i + 0.5) / 4096) for i in range(2048, 4096)]
    table = np.array([-q for q in reversed(upper)] + upper)
    return table / math.sqrt(float(np.mean(table * table)))


NOISE_TABLE = noise_table()


def erasing_reference(prob, min_area, max_area, min_aspect, max_count, mean, std, fast_fill):
    """Random erasing as documented, with the draws in the documented order."""
    def reference(image, key):
        if not uniform(key, 0) < prob:
            return image
        height, width, channels = image.shape
        means = np.broadcast_to(np.asarray(mean, float), (channels,))
        stds = np.broadcast_to(np.asarray(std, float), (channels,))
        count = 1 + min(int(uniform(key, 1) * max_count), max_count - 1)
        k = 2
        for _ in range(count):
            area = (min_area + (max_area - min_area) * uniform(key, k)) * height * width / count
            aspect = math.exp(math.log(min_aspect) * (1 - 2 * uniform(key, k + 1)))
            h = min(height, max(1, math.floor(math.sqrt(area * aspect) + 0.5)))
            w = min(width, max(1, math.floor(math.sqrt(area / aspect) + 0.5)))
            top = min(int(uniform(key, k + 2) * (height - h + 1)), height - h)
            left = min(int(uniform(key, k + 3) * (width - w + 1)), width - w)
            k += 4
            box = image[top:top + h, left:left + w]
            if fast_fill:
                for c in range(channels):
                    z, k = standard_normal(key, k)
                    box[:, :, c] = rounded_uint8(means[c] + stds[c] * z)
            else:                           # noise: 4 table picks per hashed 64-bit word
                n = h * w * channels
                words = [mix64_py(int(key) + (k + j + 1) * GOLDEN) for j in range((n + 3) // 4)]
                picks = [(words[t // 4] >> (16 * (t % 4) + 4)) & 4095 for t in range(n)]
                k += len(words)
                z = NOISE_TABLE[np.array(picks, np.int64)].reshape(h, w, channels)
                box[...] = rounded_uint8(means + stds * z)
        return image
    return reference


ERASING_CASES = [
    dict(prob=0.0),
    dict(prob=0.5),
    dict(prob=1.0, max_count=3),
    dict(prob=1.0, min_area=0.3, max_area=0.9, min_aspect=0.5, fast_fill=False),
    dict(prob=1.0, max_count=2, fast_fill=False),
]


@pytest.mark.parametrize('shape', ALL_FILES)
@pytest.mark.parametrize('case', ERASING_CASES)
def test_random_erasing_matches_the_reference(image_files, shape, case):
    channels = shape[2]
    arguments = dict(prob=0.5, min_area=0.02, max_area=1 / 3, min_aspect=0.3, max_count=1,
                     fill_mean=IMAGENET_MEAN if channels == 3 else (120.0,),
                     fill_std=IMAGENET_STD if channels == 3 else (60.0,), fast_fill=True)
    arguments.update(case)
    reference = erasing_reference(arguments['prob'], arguments['min_area'], arguments['max_area'],
                                  arguments['min_aspect'], arguments['max_count'], arguments['fill_mean'],
                                  arguments['fill_std'], arguments['fast_fill'])
    out, originals = check_against_reference(image_files, shape, lambda: RandomErasing(**arguments), reference)
    changed = applied(out, originals)
    if arguments['prob'] == 0.0:
        assert not changed.any()
    if arguments['prob'] == 1.0:
        assert changed.mean() > 0.9         # a fill equal to every pixel it covers is rare


def test_random_erasing_areas_and_aspects_follow_the_arguments(tmp_path):
    """Zero-noise black fills on 60x80 images of non-zero pixels show each rectangle."""
    n, height, width = 300, 60, 80
    images = np.full((n, height, width, 3), 200, np.uint8)
    reader = write_dataset(tmp_path / 'plain.beton', {'image': RGBImageField(write_mode='raw')},
                           [(image,) for image in images])
    out = run_op(reader, RandomErasing(1.0, 0.05, 0.25, 0.5, fill_mean=(0,), fill_std=(0,)), np.arange(n), seed=3)
    fractions, aspects = [], []
    for image in out:
        ys, xs = np.nonzero((image == 0).all(axis=2))
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert ys.size == h * w, "the erased pixels are not one rectangle"
        fractions.append(h * w / (height * width))
        aspects.append(h / w)
    fractions, aspects = np.array(fractions), np.array(aspects)
    # sides are rounded (and clipped): allow a pixel either way
    assert fractions.min() > 0.035 and fractions.max() < 0.28
    assert abs(fractions.mean() - 0.15) < 0.015
    assert aspects.min() > 0.4 and aspects.max() < 2.5
    assert (aspects < 0.8).any() and (aspects > 1.25).any()
    assert abs(np.log(aspects).mean()) < 0.1          # log-uniform about 1


def test_random_erasing_noise_table_is_a_unit_normal():
    """The noise fill draws uniformly among these 4096 values: mean 0, variance 1, and the
    normal's quantiles (a discretised N(0, 1), tails cut at |z| < 3.67)."""
    np.testing.assert_array_equal(NORMAL_QUANTILES, NOISE_TABLE)
    assert NORMAL_QUANTILES.shape == (4096,) and (np.diff(NORMAL_QUANTILES) > 0).all()
    assert abs(NORMAL_QUANTILES.mean()) < 1e-12 and abs(NORMAL_QUANTILES.var() - 1) < 1e-12
    assert 3.6 < NORMAL_QUANTILES.max() < 3.67
    normal = statistics.NormalDist()
    for p in (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99):     # its quantiles are the normal's
        assert abs(np.quantile(NORMAL_QUANTILES, p) - normal.inv_cdf(p)) < 0.01
    fourth = np.mean(NORMAL_QUANTILES ** 4)                # the normal's kurtosis is 3
    assert abs(fourth - 3) < 0.05, fourth


def test_random_erasing_noise_fill_has_the_given_statistics(tmp_path):
    n = 40
    images = np.full((n, 64, 64, 3), 1, np.uint8)
    reader = write_dataset(tmp_path / 'ones.beton', {'image': RGBImageField(write_mode='raw')},
                           [(image,) for image in images])
    mean, std = (100.0, 150.0, 60.0), (10.0, 20.0, 5.0)
    noise = run_op(reader, RandomErasing(1.0, 0.2, 0.3, fill_mean=mean, fill_std=std, fast_fill=False),
                   np.arange(n))
    flat = run_op(reader, RandomErasing(1.0, 0.2, 0.3, fill_mean=mean, fill_std=std, fast_fill=True),
                  np.arange(n))
    for c in range(3):
        values = noise[..., c][noise[..., c] != 1].astype(float)
        assert abs(values.mean() - mean[c]) < 0.5 and abs(values.std() / std[c] - 1) < 0.05
    values = noise[..., 1][noise[..., 1] != 1].astype(float)          # the normal's 2-sigma tails: 4.55%
    assert abs((np.abs(values - mean[1]) > 2 * std[1]).mean() - 0.0455) < 0.006
    for image in flat:                      # one colour per rectangle
        erased = image[(image != 1).any(axis=2)]
        assert len(np.unique(erased, axis=0)) == 1


@pytest.mark.parametrize('kwargs,message', [
    (dict(prob=-1), 'prob must be a probability'),
    (dict(min_area=0.5, max_area=0.2), 'needs 0 < min_area <= max_area <= 1'),
    (dict(min_area=0), 'needs 0 < min_area <= max_area <= 1'),
    (dict(min_aspect=2), r'min_aspect must be in \(0, 1\]'),
    (dict(max_count=0), 'max_count must be a positive integer'),
    (dict(fill_mean='gray'), 'fill_mean must be a sequence of numbers'),
    (dict(fill_std=(1, -1, 1)), 'fill_std must be >= 0'),
    (dict(fast_fill='yes'), 'fast_fill must be True or False'),
])
def test_random_erasing_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=f"RandomErasing {message}"):
        RandomErasing(**kwargs)


def test_random_erasing_fill_must_match_the_channels(image_files):
    reader, _ = image_files[7, 5, 1]
    with pytest.raises(ValueError, match="RandomErasing fill_mean has 3 values, the images have 1 channels"):
        run_op(reader, RandomErasing(), np.arange(3))


# ------------------------------------------------------------ Solarization


def solarize_reference(prob, threshold):
    def reference(image, key):
        if uniform(key, 0) < prob:
            image = np.where(image >= threshold, 255 - image, image).astype(np.uint8)
        return image
    return reference


@pytest.mark.parametrize('shape', ALL_FILES)
@pytest.mark.parametrize('prob,threshold', [(0.0, 128), (0.5, 128), (1.0, 128), (1.0, 0), (1.0, 256), (1.0, 200)])
def test_solarization_matches_the_reference(image_files, shape, prob, threshold):
    out, originals = check_against_reference(image_files, shape, lambda: Solarization(prob, threshold),
                                             solarize_reference(prob, threshold))
    if prob == 0.0 or threshold == 256:
        np.testing.assert_array_equal(out, originals)
    if prob == 1.0 and threshold == 0:
        np.testing.assert_array_equal(out, 255 - originals)


@pytest.mark.parametrize('kwargs,message', [
    (dict(solarization_prob=1.2), r'solarization_prob must be a probability in \[0, 1\]'),
    (dict(threshold=300), r'threshold must be an integer in 0\.\.256'),
    (dict(threshold=12.5), r'threshold must be an integer in 0\.\.256'),
])
def test_solarization_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=f"Solarization {message}"):
        Solarization(**kwargs)


# ------------------------------------------------------------ RandomGrayscale


def grayscale_reference(p):
    def reference(image, key):
        if image.shape[2] == 3 and uniform(key, 0) < p:
            rgb = image.astype(np.int64)
            luma = (299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000
            image = np.repeat(luma[..., None], 3, axis=2).astype(np.uint8)
        return image
    return reference


@pytest.mark.parametrize('shape', ALL_FILES)
@pytest.mark.parametrize('p', [0.0, 0.1, 0.5, 1.0])
def test_random_grayscale_matches_the_reference(image_files, shape, p):
    out, originals = check_against_reference(image_files, shape, lambda: RandomGrayscale(p), grayscale_reference(p))
    if shape[2] == 1 or p == 0.0:
        np.testing.assert_array_equal(out, originals)
    elif p == 1.0:
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_random_grayscale_is_the_rounded_luma():
    """Known values (ITU-R 601-2 weights, rounded half up)."""
    from ffcv_ops.kernels.pixel import grayscale_inplace
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30], [1, 1, 0]]],
                      np.uint8)
    grayscale_inplace(pixels, np.array([0]), np.uint64(0), 1.0)
    # 76.245, 149.685, 29.07, 255, 18.15 (10*.299+20*.587+30*.114), 0.886
    np.testing.assert_array_equal(pixels[0, :, 0], [76, 150, 29, 255, 18, 1])


def test_random_grayscale_needs_one_or_three_channels(tmp_path):
    images = np.ones((3, 4, 4, 4), np.uint8)
    reader = write_dataset(tmp_path / 'rgba.beton', {'image': ImageField(write_mode='raw', channels=4)},
                           [(image,) for image in images])
    with pytest.raises(ValueError, match="RandomGrayscale works on images of 1 or 3 channels"):
        run_op(reader, RandomGrayscale(), np.arange(3))


@pytest.mark.parametrize('p', [1.01, -0.5, 'always'])
def test_random_grayscale_probability_is_checked(p):
    with pytest.raises(ValueError, match=r"RandomGrayscale p must be a probability in \[0, 1\]"):
        RandomGrayscale(p)


# ------------------------------------------------------------ GaussianBlur


def mirror(position, size):
    """Reflect about the edge pixels without repeating them, continuing for far positions."""
    if size == 1:
        return 0
    period = 2 * (size - 1)
    position %= period
    return position if position < size else period - position


def blur_reference(size_x, size_y, sigma_lo, sigma_hi, p):
    """In float64: the 2-D kernel (outer product of the 1-D ones) over a reflect-padded
    image (``np.pad`` where the image is wider than the padding, as torch pads)."""
    def weights(size, sigma):
        t = np.arange(size) - (size - 1) / 2
        w = np.exp(-0.5 * (t / sigma) ** 2)
        return w / w.sum()

    def reference(image, key):
        if not uniform(key, 0) < p:
            return image.astype(float)
        sigma = sigma_lo + (sigma_hi - sigma_lo) * uniform(key, 1)
        kernel = np.outer(weights(size_y, sigma), weights(size_x, sigma))
        height, width = image.shape[:2]
        ry, rx = size_y // 2, size_x // 2
        if ry < height and rx < width:
            padded = np.pad(image.astype(float), ((ry, ry), (rx, rx), (0, 0)), mode='reflect')
        else:
            rows = [mirror(y, height) for y in range(-ry, height + ry)]
            columns = [mirror(x, width) for x in range(-rx, width + rx)]
            padded = image.astype(float)[rows][:, columns]
        out = np.zeros(image.shape)
        for dy in range(size_y):
            for dx in range(size_x):
                out += kernel[dy, dx] * padded[dy:dy + height, dx:dx + width]
        return out
    return reference


@pytest.mark.parametrize('shape', ALL_FILES)
@pytest.mark.parametrize('kernel_size,sigma,p', [(3, (0.1, 2.0), 0.0), (3, (0.1, 2.0), 0.5), (5, 1.0, 1.0),
                                                 ((7, 3), (0.5, 3.0), 1.0), (9, (1.0, 5.0), 1.0)])
def test_gaussian_blur_matches_the_reference(image_files, shape, kernel_size, sigma, p):
    """Within 1 of the float64 reference (float32 sums; rounding), and within 0.5 + 1e-3
    before rounding for almost every pixel."""
    reader, originals = image_files[shape]
    indices = np.arange(COUNT)
    op = GaussianBlur(kernel_size, sigma, p)
    out = run_op(reader, op, indices, seed=8)
    keys = keys_of(reader, op, indices, seed=8)
    reference = blur_reference(*op.kernel_size, *op.sigma, p)
    expected = np.stack([reference(originals[i], key) for i, key in zip(indices, keys)])
    difference = np.abs(out.astype(float) - expected)
    assert difference.max() <= 0.5 + 1e-3, difference.max()
    # rounding half up of the float32 result: equal to the reference rounded, but for ties
    assert (out == np.floor(expected + 0.5)).mean() > 0.999
    np.testing.assert_array_equal(run_op(reader, op, indices[-1:], seed=8)[0], out[-1])   # a batch of one
    order = np.random.default_rng(4).permutation(COUNT)
    np.testing.assert_array_equal(run_op(reader, op, indices[order], seed=8, chunk=7, workers=2), out[order])
    blurred = applied(out, originals)
    if p == 0.0 or shape[:2] == (1, 1):
        assert not blurred.any()            # a single pixel is its own blur
    elif p == 1.0:
        assert blurred.all()


def test_gaussian_blur_keeps_a_constant_image_and_spreads_a_point():
    from ffcv_ops.kernels.blur import gaussian_blur_inplace
    images = np.full((2, 9, 9, 1), 77, np.uint8)
    images[1] = 0
    images[1, 4, 4, 0] = 255
    gaussian_blur_inplace(images.reshape(18, 9), 9, 1, np.arange(2), np.uint64(0), 1.0, 5, 5, 1.0, 1.0)
    assert (images[0] == 77).all()
    point = images[1, :, :, 0].astype(float)
    w = np.exp(-0.5 * np.arange(-2, 3) ** 2)
    w /= w.sum()
    np.testing.assert_allclose(point[2:7, 2:7], np.floor(255 * np.outer(w, w) + 0.5), atol=1)
    assert point[4, 4] == point.max() and (point[:2] == 0).all()
    np.testing.assert_array_equal(point, point.T)      # symmetric kernel
    np.testing.assert_array_equal(point, point[::-1])


def test_reflect_index_mirrors_without_repeating_the_edge():
    assert [reflect_index(x, 4) for x in range(-4, 8)] == [2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1]
    assert [reflect_index(x, 1) for x in (-3, 0, 5)] == [0, 0, 0]
    assert [reflect_index(x, 2) for x in range(-2, 4)] == [0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize('kwargs,message', [
    (dict(kernel_size=4), 'kernel_size must be a positive odd integer'),
    (dict(kernel_size=(3, 3, 3)), 'kernel_size must be a positive odd integer'),
    (dict(kernel_size=0), 'kernel_size must be a positive odd integer'),
    (dict(kernel_size=3, sigma=0), 'sigma must be a number > 0'),
    (dict(kernel_size=3, sigma=(2.0, 1.0)), r'sigma must be a number > 0 or a pair \(min, max\)'),
    (dict(kernel_size=3, p=2), r'p must be a probability in \[0, 1\]'),
])
def test_gaussian_blur_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=f"GaussianBlur {message}"):
        GaussianBlur(**kwargs)


# ------------------------------------------------------------ probabilities are honoured


@pytest.mark.parametrize('make_op', [lambda p: RandomVerticalFlip(p), lambda p: RandomCutout(p, 3),
                                     lambda p: RandomErasing(p), lambda p: Solarization(p, 0),
                                     lambda p: RandomGrayscale(p), lambda p: GaussianBlur(3, 1.0, p)])
def test_the_fraction_of_images_changed_is_p(tmp_path_factory, make_op):
    n = 1000
    rng = np.random.default_rng(9)
    images = rng.integers(1, 256, (n, 6, 6, 3), dtype=np.uint8)
    reader = write_dataset(tmp_path_factory.mktemp('many') / 'many.beton', {'image': RGBImageField(write_mode='raw')},
                           [(image,) for image in images])
    for p in (0.1, 0.7):
        changed = applied(run_op(reader, make_op(p), np.arange(n), seed=21), images).mean()
        assert abs(changed - p) < 4 * math.sqrt(p * (1 - p) / n), (make_op(p), changed)


# ------------------------------------------------------------ the conformance kit


class TestRandomVerticalFlip(OperationTests):
    random = True

    def make_operation(self):
        return RandomVerticalFlip()


class TestRandomCutout(OperationTests):
    random = True

    def make_operation(self):
        return RandomCutout(0.7, 5, (10, 20, 30))


class TestRandomErasing(OperationTests):
    random = True

    def make_operation(self):
        return RandomErasing(0.8, max_count=2)


class TestRandomErasingNoise(OperationTests):
    random = True

    def make_operation(self):
        return RandomErasing(0.8, fast_fill=False)


class TestSolarization(OperationTests):
    random = True

    def make_operation(self):
        return Solarization(0.5, 100)


class TestRandomGrayscale(OperationTests):
    random = True

    def make_operation(self):
        return RandomGrayscale(0.5)


class TestGaussianBlur(OperationTests):
    random = True

    def make_operation(self):
        return GaussianBlur(5, (0.5, 2.0), 0.8)
