"""FFCV 1.0's other transforms (mixup, poisoning, label replacement, random resized crops of
decoded images, colour jitter, ModuleWrapper) against numpy references computed here."""
import math

import cv2
import numpy as np
import pytest
import torch
from ffcv_format import ImageField, IntField, NDArrayField, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset

from ffcv_ops import (Convert, ImageMixup, IntDecoder, LabelMixup, MixupToOneHot, ModuleWrapper,
                      NDArrayDecoder, Poison, RandomBrightness, RandomContrast, RandomResizedCrop,
                      RandomSaturation, ReplaceLabel, SimpleRGBImageDecoder, ToTensor, ToTorchImage)
from ffcv_ops.kernels.crop import random_resized_crop_box
from ffcv_ops.kernels.mixup import mixup_lambdas
from ffcv_ops.kernels.random import (beta_variate, derive_seed, log_gamma_variate, sample_key, sample_key_py,
                                     stream_seed, uniform_py)
from ffcv_ops.testing import make_pipeline, run_batch, run_pipeline, storage_state_of

N = 400                      # small_images_file: 400 raw 16x20 RGB images, label k for sample k
M = 96                       # square_file below
SIDE = 32
CLASSES = 10


@pytest.fixture(scope='module')
def originals(small_images_file):
    return np.stack([small_images_file.read_field(i, 'image') for i in range(N)])


@pytest.fixture(scope='module')
def square_file(tmp_path_factory):
    """96 samples: 32x32 RGB photos (raw), their 1-channel version, a label k % 10, a
    float32 (4, 5, 2) array."""
    rng = np.random.default_rng(21)
    photos = [photo_like_image(rng, SIDE, SIDE) for _ in range(M)]
    samples = [(p, p[:, :, :1].copy(), k % CLASSES, rng.normal(0, 50, (4, 5, 2)).astype(np.float32))
               for k, p in enumerate(photos)]
    return write_dataset(tmp_path_factory.mktemp('ffcv1') / 'square.beton',
                         {'image': RGBImageField(write_mode='raw'),
                          'gray': ImageField(write_mode='raw', channels=1),
                          'label': IntField(),
                          'array': NDArrayField(np.dtype('float32'), (4, 5, 2))}, samples)


@pytest.fixture(scope='module')
def square(square_file):
    return {name: np.stack([square_file.read_field(i, name) for i in range(M)])
            for name in ('image', 'gray', 'label', 'array')}


def shuffled(n, count, seed=0):
    return np.random.default_rng(seed).permutation(n)[:count]


def run_images(reader, ops, indices, field='image', **options):
    return run_pipeline(reader, field, [SimpleRGBImageDecoder(), *ops], indices, **options)


def op_seed(reader, field, ops, position, seed, epoch=0, pipeline_index=0):
    """The seed the pipeline gives its operation at ``position`` (0 is the decoder)."""
    return int(make_pipeline(reader, field, ops).op_seeds(seed, epoch, pipeline_index)[position])


# ------------------------------------------------------------ the Beta sampler


@pytest.mark.parametrize('a,b', [(0.2, 0.2), (0.7, 3.0), (1.0, 1.0), (5.0, 0.4), (40.0, 40.0)])
def test_beta_draws_have_the_beta_moments(a, b):
    draws, counters = [], []
    for index in range(4000):
        value, next_k = beta_variate(np.uint64(sample_key_py(derive_seed(5, 6), index)), 0, a, b)
        draws.append(value)
        counters.append(next_k)
    draws = np.array(draws)
    mean, variance = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert draws.min() >= 0 and draws.max() <= 1 and min(counters) >= 6    # two gammas: 3+ uniforms each
    assert abs(draws.mean() - mean) < 4 * math.sqrt(variance / draws.size)
    assert abs(draws.var() / variance - 1) < 0.1


def test_beta_with_tiny_shapes_stays_in_range():
    for index in range(300):
        value, _ = beta_variate(np.uint64(sample_key_py(derive_seed(5, 6), index)), 0, 0.01, 0.01)
        assert 0.0 <= value <= 1.0 and value == value     # no 0/0


def lambdas(indices, seed, alpha, same_lambda=False):
    out = np.empty(len(indices))
    mixup_lambdas(np.asarray(indices, np.int64), np.uint64(seed), alpha, same_lambda, out)
    return out


@pytest.mark.parametrize('alpha', [0.1, 0.4, 1.0, 4.0])
def test_mixup_lambdas_are_beta_alpha_alpha(alpha):
    lam = lambdas(np.arange(5000), derive_seed(1, alpha), alpha)
    variance = 1 / (4 * (2 * alpha + 1))                  # of Beta(alpha, alpha); its mean is 1/2
    standard_error = math.sqrt(variance / lam.size)
    assert lam.min() >= 0 and lam.max() <= 1
    assert abs(lam.mean() - 0.5) < 4 * standard_error
    assert abs(lam.var() / variance - 1) < 0.08
    assert abs((lam < 0.5).mean() - 0.5) < 0.03           # symmetric about 1/2
    if alpha == 1.0:                                       # Beta(1, 1) is uniform
        np.testing.assert_allclose(np.quantile(lam, [0.1, 0.25, 0.5, 0.75, 0.9]), [0.1, 0.25, 0.5, 0.75, 0.9],
                                   atol=0.02)
    if alpha == 0.1:                                       # mostly near 0 or 1
        assert ((lam < 0.05) | (lam > 0.95)).mean() > 0.6


@pytest.mark.parametrize('shape', [0.05, 0.3, 1.0, 2.5, 20.0])
def test_gamma_draws_have_the_gamma_moments(shape):
    keys = [np.uint64(sample_key_py(derive_seed(2, 3), i)) for i in range(4000)]
    logs = np.array([log_gamma_variate(key, 0, shape)[0] for key in keys])
    draws = np.exp(logs)                                   # Gamma(shape, 1): mean and variance = shape
    n = draws.size
    assert abs(draws.mean() / shape - 1) < 4 * math.sqrt(1 / (shape * n))
    # the sample variance's relative error: sqrt((2 + excess kurtosis 6 / shape) / n)
    assert abs(draws.var() / shape - 1) < 4 * math.sqrt((2 + 6 / shape) / n)
    # the lower tail, where the boost of small shapes acts: P(X < x) ~ x^shape / Gamma(shape + 1)
    x = 1e-3 if shape >= 1 else 1e-10
    expected = x ** shape / math.gamma(shape + 1)
    assert abs((logs < math.log(x)).mean() - expected) < 4 * math.sqrt(expected * (1 - expected) / n) + 1e-3


def test_same_lambda_is_the_draw_of_the_last_sample():
    indices = shuffled(1000, 50)
    seed = derive_seed(9)
    same = lambdas(indices, seed, 0.3, True)
    assert (same == lambdas(indices[-1:], seed, 0.3)[0]).all()
    assert len(set(lambdas(indices, seed, 0.3))) == 50


# ------------------------------------------------------------ ImageMixup


def mixed(images, lam):
    """Reference: image i blended with image i - 1 (0 with the last), in float64, stored by
    truncation into the images' type."""
    x = images.astype(np.float64)
    previous = np.roll(x, 1, axis=0)
    weights = lam.reshape(-1, *[1] * (x.ndim - 1))
    return (weights * x + (1 - weights) * previous).astype(images.dtype)


@pytest.mark.parametrize('alpha,same_lambda', [(0.2, False), (1.0, False), (0.5, True)])
def test_image_mixup_blends_each_image_with_the_one_before(small_images_file, originals, alpha, same_lambda):
    indices = shuffled(N, 150)
    out = run_images(small_images_file, [ImageMixup(alpha, same_lambda)], indices, seed=4, epoch=2)
    lam = lambdas(indices, stream_seed(4, 2, 'mixup'), alpha, same_lambda)
    assert out.shape == (150, 16, 20, 3) and out.dtype == np.uint8
    expected = mixed(originals[indices], lam)
    np.testing.assert_array_equal(out, expected)
    assert (len(set(lam)) == 1) == same_lambda
    # spelled out for the first image, which is blended with the last one
    first, last = originals[indices[0]].astype(np.float64), originals[indices[-1]].astype(np.float64)
    np.testing.assert_array_equal(out[0], (lam[0] * first + (1 - lam[0]) * last).astype(np.uint8))
    assert not np.array_equal(out[0], originals[indices[0]])


def test_image_mixup_of_float_arrays_is_stored_as_computed(square_file, square):
    indices = shuffled(M, 40)
    out = run_pipeline(square_file, 'array', [NDArrayDecoder(), ImageMixup(0.4, False)], indices, seed=1)
    lam = lambdas(indices, stream_seed(1, 0, 'mixup'), 0.4)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, mixed(square['array'][indices], lam))


def test_image_mixup_is_deterministic_and_independent_of_chunks(small_images_file):
    indices = shuffled(N, 120)
    out = run_images(small_images_file, [ImageMixup(0.3, False)], indices, seed=6)
    for options in (dict(chunk=7, workers=2), dict(chunk=1), dict(chunk=120)):
        np.testing.assert_array_equal(run_images(small_images_file, [ImageMixup(0.3, False)], indices, seed=6,
                                                 **options), out)
    assert not np.array_equal(run_images(small_images_file, [ImageMixup(0.3, False)], indices, seed=7), out)
    assert not np.array_equal(run_images(small_images_file, [ImageMixup(0.3, False)], indices, seed=6,
                                         epoch=1), out)


@pytest.mark.parametrize('kwargs,match', [(dict(alpha=0, same_lambda=False), 'alpha'),
                                          (dict(alpha=-1.0, same_lambda=True), 'alpha'),
                                          (dict(alpha='x', same_lambda=True), 'alpha'),
                                          (dict(alpha=float('inf'), same_lambda=True), 'alpha'),
                                          (dict(alpha=0.2, same_lambda='yes'), 'same_lambda')])
@pytest.mark.parametrize('cls', [ImageMixup, LabelMixup])
def test_mixup_arguments_are_checked(cls, kwargs, match):
    with pytest.raises(ValueError, match=rf"{cls.__name__} {match}"):
        cls(**kwargs)


def test_image_mixup_needs_numpy_images(small_images_file):
    with pytest.raises(ValueError, match=r"ImageMixup works on numpy image batches"):
        run_images(small_images_file, [ToTensor(), ImageMixup(0.2, False)], np.arange(8))
    with pytest.raises(ValueError, match=r"ImageMixup works on numpy image batches"):
        run_pipeline(small_images_file, 'label', [IntDecoder(), ImageMixup(0.2, False)], np.arange(8))


# ------------------------------------------------------------ LabelMixup


def label_rows(labels, lam):
    return np.stack([labels, np.roll(labels, 1), lam], axis=1).astype(np.float32)


@pytest.mark.parametrize('same_lambda', [False, True])
def test_label_mixup_rows(square_file, square, same_lambda):
    indices = shuffled(M, 64, seed=3)
    out = run_pipeline(square_file, 'label', [IntDecoder(), LabelMixup(0.3, same_lambda)], indices, seed=2)
    assert out.shape == (64, 3) and out.dtype == np.float32
    lam = lambdas(indices, stream_seed(2, 0, 'mixup'), 0.3, same_lambda)
    np.testing.assert_array_equal(out, label_rows(square['label'][indices], lam))


class UnpairedLabelMixup(LabelMixup):
    random_stream = None          # the seed then depends on the pipeline and position


@pytest.mark.parametrize('same_lambda', [False, True])
def test_image_and_label_mixup_pair_the_same_samples_with_the_same_weights(small_images_file, originals,
                                                                           same_lambda):
    """Two pipelines of one loader (image: pipeline 0, label: pipeline 1, the mixup at
    different positions): the shared stream gives both the same seed, hence the same pairs
    and lambdas."""
    indices = shuffled(N, 100, seed=5)
    image_ops = [SimpleRGBImageDecoder(), ImageMixup(0.5, same_lambda)]
    label_ops = [IntDecoder(), Convert(np.int32), LabelMixup(0.5, same_lambda)]
    images = run_pipeline(small_images_file, 'image', image_ops, indices, seed=8, epoch=3, pipeline_index=0)
    rows = run_pipeline(small_images_file, 'label', label_ops, indices, seed=8, epoch=3, pipeline_index=1,
                        chunk=9, workers=2)
    # the labels of this file are the sample indices: the rows name the blended samples
    np.testing.assert_array_equal(rows[:, 0], indices)
    np.testing.assert_array_equal(rows[:, 1], np.roll(indices, 1))
    lam = lambdas(indices, stream_seed(8, 3, 'mixup'), 0.5, same_lambda)
    np.testing.assert_array_equal(rows[:, 2], lam.astype(np.float32))
    np.testing.assert_array_equal(images, mixed(originals[indices], lam))
    # what makes them equal: the stream's seed, the same in both pipelines
    image_seed = op_seed(small_images_file, 'image', image_ops, 1, 8, 3, pipeline_index=0)
    label_seed = op_seed(small_images_file, 'label', label_ops, 2, 8, 3, pipeline_index=1)
    assert image_seed == label_seed == stream_seed(8, 3, 'mixup')
    # without it, the label half would draw other weights
    unpaired = [IntDecoder(), Convert(np.int32), UnpairedLabelMixup(0.5, same_lambda)]
    other = run_pipeline(small_images_file, 'label', unpaired, indices, seed=8, epoch=3, pipeline_index=1)
    np.testing.assert_array_equal(other[:, :2], rows[:, :2])
    assert not np.array_equal(other[:, 2], rows[:, 2])


def test_label_mixup_needs_integer_labels(small_images_file):
    with pytest.raises(ValueError, match=r"LabelMixup works on integer label batches \(batch, 1\)"):
        run_images(small_images_file, [LabelMixup(0.2, False)], np.arange(4))
    with pytest.raises(ValueError, match=r"LabelMixup works on integer label batches.*float64"):
        run_pipeline(small_images_file, 'label', [IntDecoder(), Convert(np.float64), LabelMixup(0.2, False)],
                     np.arange(4))
    with pytest.raises(ValueError, match=r"LabelMixup works on integer label batches.*torch"):
        run_pipeline(small_images_file, 'label', [IntDecoder(), ToTensor(), LabelMixup(0.2, False)],
                     np.arange(4))


# ------------------------------------------------------------ MixupToOneHot


def one_hot_reference(rows, num_classes):
    expected = np.zeros((rows.shape[0], num_classes), np.float64)
    n = np.arange(rows.shape[0])
    np.add.at(expected, (n, rows[:, 0].astype(np.int64)), rows[:, 2].astype(np.float64))
    np.add.at(expected, (n, rows[:, 1].astype(np.int64)), 1 - rows[:, 2].astype(np.float64))
    return expected


def test_mixup_to_one_hot(square_file, square):
    indices = shuffled(M, 80, seed=2)
    ops = [IntDecoder(), LabelMixup(0.4, False), ToTensor(), MixupToOneHot(CLASSES)]
    pipeline = make_pipeline(square_file, 'label', ops)
    pipeline.declare()
    pipeline.generate()
    buffers = pipeline.allocate(len(indices))
    out = run_batch(pipeline, storage_state_of(square_file), indices, seed=5, buffers=buffers)
    assert isinstance(out, torch.Tensor) and out.shape == (80, CLASSES) and out.dtype == torch.float32
    labels = square['label'][indices]
    lam = lambdas(indices, stream_seed(5, 0, 'mixup'), 0.4)
    rows = label_rows(labels, lam)
    np.testing.assert_allclose(out.numpy(), one_hot_reference(rows, CLASSES), rtol=0, atol=1e-7)
    np.testing.assert_allclose(out.sum(dim=1).numpy(), 1.0, rtol=0, atol=1e-6)
    # a sample blended with one of its own class: the class gets lam + (1 - lam) = 1
    same = np.flatnonzero(labels == np.roll(labels, 1))
    assert same.size, "the batch should pair some samples of one class"
    np.testing.assert_allclose(out.numpy()[same, labels[same]], 1.0, atol=1e-6)
    assert ((out.numpy()[same] > 0).sum(axis=1) == 1).all()
    different = np.flatnonzero(labels != np.roll(labels, 1))
    assert ((out.numpy()[different] > 0).sum(axis=1) <= 2).all()
    # the input (LabelMixup's rows) is left as it was
    np.testing.assert_array_equal(buffers[1][:80], rows)


def test_mixup_to_one_hot_keeps_the_input_type(square_file):
    ops = [IntDecoder(), LabelMixup(2.0, True), ToTensor(), Convert(torch.float64), MixupToOneHot(12)]
    out = run_pipeline(square_file, 'label', ops, np.arange(30), seed=1)
    assert out.dtype == torch.float64 and out.shape == (30, 12)
    np.testing.assert_allclose(out.sum(dim=1).numpy(), 1.0, atol=1e-12)
    assert (out[:, 10:] == 0).all()


def test_mixup_to_one_hot_checks_its_input(square_file):
    with pytest.raises(ValueError, match=r"MixupToOneHot num_classes must be a positive integer"):
        MixupToOneHot(0)
    with pytest.raises(ValueError, match=r"MixupToOneHot num_classes"):
        MixupToOneHot(2.5)
    with pytest.raises(ValueError, match=r"MixupToOneHot works on LabelMixup's \(batch, 3\) rows.*ToTensor"):
        run_pipeline(square_file, 'label', [IntDecoder(), LabelMixup(0.2, False), MixupToOneHot(10)],
                     np.arange(4))
    with pytest.raises(ValueError, match=r"MixupToOneHot works on LabelMixup's"):
        run_pipeline(square_file, 'label', [IntDecoder(), ToTensor(), MixupToOneHot(10)], np.arange(4))
    with pytest.raises(ValueError, match=r"MixupToOneHot\(num_classes=5\) got labels from 0 to 9"):
        run_pipeline(square_file, 'label',
                     [IntDecoder(), LabelMixup(0.2, False), ToTensor(), MixupToOneHot(5)], np.arange(20))


# ------------------------------------------------------------ Poison


def poisoned(images, mask, alpha, clamp=(0, 255)):
    """Reference: ``clip(f32(x) * f32(1 - alpha) + f32(mask * alpha), *clamp)``, truncated."""
    keep = (1 - alpha)[:, :, None].astype(np.float32)
    overlay = (mask * alpha[:, :, None]).astype(np.float32)
    return np.clip(images.astype(np.float32) * keep + overlay, np.float32(clamp[0]),
                   np.float32(clamp[1])).astype(images.dtype)


@pytest.fixture(scope='module')
def pattern():
    rng = np.random.default_rng(11)
    mask = rng.uniform(0, 300, (16, 20, 3))            # beyond 255 somewhere: the clamp matters
    alpha = np.zeros((16, 20))
    alpha[2:9, 3:15] = rng.uniform(0.2, 1.0, (7, 12))
    alpha[12:, 15:] = 1.0
    return mask, alpha


@pytest.mark.parametrize('clamp', [(0, 255), (40, 200)])
def test_poison_changes_the_listed_samples_only(small_images_file, originals, pattern, clamp):
    mask, alpha = pattern
    indices = shuffled(N, 200, seed=4)
    outside = np.setdiff1d(np.arange(N), indices)
    # any order, repeats, samples outside the batch or the file
    listed = [indices[150], indices[3], outside[0], indices[77], indices[3], 1000, indices[199], outside[1]]
    out = run_images(small_images_file, [Poison(mask, alpha, listed, clamp)], indices, chunk=11, workers=2)
    hit = np.isin(indices, listed)
    assert hit.sum() == 4 and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~hit], originals[indices[~hit]])
    np.testing.assert_array_equal(out[hit], poisoned(originals[indices[hit]], mask, alpha, clamp))
    assert not np.array_equal(out[hit], originals[indices[hit]])
    # where alpha is 1 the mask replaces the image; where it is 0 nothing changes
    corner = np.clip(mask[12:, 15:].astype(np.float32), *clamp).astype(np.uint8)
    np.testing.assert_array_equal(out[hit][:, 12:, 15:], np.broadcast_to(corner, (4, *corner.shape)))
    if clamp == (0, 255):
        np.testing.assert_array_equal(out[hit][:, :2], originals[indices[hit]][:, :2])
    else:
        assert out[hit].min() >= 40 and out[hit].max() <= 200


def test_poison_checks_its_arguments(small_images_file, pattern):
    mask, alpha = pattern
    with pytest.raises(ValueError, match=r"Poison mask must be \(height, width, channels\)"):
        Poison(mask[:, :, 0], alpha, [1])
    with pytest.raises(ValueError, match=r"Poison alpha must be \(height, width\) = \(16, 20\)"):
        Poison(mask, alpha[:8], [1])
    with pytest.raises(ValueError, match=r"Poison mask and alpha must be finite"):
        Poison(mask, alpha * np.nan, [1])
    with pytest.raises(ValueError, match=r"Poison clamp must be \(low, high\) with low <= high"):
        Poison(mask, alpha, [1], clamp=(255, 0))
    with pytest.raises(ValueError, match=r"Poison indices must be a 1-D sequence"):
        Poison(mask, alpha, [[1, 2]])
    with pytest.raises(ValueError, match=r"Poison indices must be a 1-D sequence"):
        Poison(mask, alpha, [1.5])
    with pytest.raises(ValueError, match=r"Poison indices must be sample indices \(>= 0\)"):
        Poison(mask, alpha, [3, -1])
    with pytest.raises(ValueError, match=r"Poison mask has shape \(8, 20, 3\), the images \(16, 20, 3\)"):
        run_images(small_images_file, [Poison(mask[:8], alpha[:8], [1])], np.arange(4))
    with pytest.raises(ValueError, match=r"Poison clamp \(-1.0, 255.0\) does not fit the images' type uint8"):
        run_images(small_images_file, [Poison(mask, alpha, [1], clamp=(-1, 255))], np.arange(4))
    with pytest.raises(ValueError, match=r"Poison works on numpy image batches"):
        run_images(small_images_file, [ToTensor(), Poison(mask, alpha, [1])], np.arange(4))


# ------------------------------------------------------------ ReplaceLabel


def test_replace_label_changes_the_listed_samples_only(small_images_file):
    listed = [390, 4, 17, 17, 250, 5000]
    indices = shuffled(N, 300, seed=6)
    out = run_pipeline(small_images_file, 'label', [IntDecoder(), ReplaceLabel(listed, 7)], indices, chunk=13,
                       workers=2)
    expected = np.where(np.isin(indices, listed), 7, indices)[:, None]
    assert np.isin(indices, listed).sum() == 4 and out.dtype == np.int64
    np.testing.assert_array_equal(out, expected)
    # in a narrower type too
    out = run_pipeline(small_images_file, 'label',
                       [IntDecoder(), Convert(np.int16), ReplaceLabel(listed, -3)], indices)
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, np.where(np.isin(indices, listed), -3, indices)[:, None])


def test_replace_label_checks_its_arguments(small_images_file):
    with pytest.raises(ValueError, match=r"ReplaceLabel new_label must be an integer"):
        ReplaceLabel([1], 2.5)
    with pytest.raises(ValueError, match=r"ReplaceLabel indices must be a 1-D sequence"):
        ReplaceLabel('abc', 1)
    with pytest.raises(ValueError, match=r"ReplaceLabel works on integer label batches"):
        run_images(small_images_file, [ReplaceLabel([1], 0)], np.arange(4))
    with pytest.raises(ValueError, match=r"ReplaceLabel works on integer label batches.*torch"):
        run_pipeline(small_images_file, 'label', [IntDecoder(), ToTensor(), ReplaceLabel([1], 0)],
                     np.arange(4))
    with pytest.raises(ValueError, match=r"ReplaceLabel new_label 300 does not fit the labels' type int8"):
        run_pipeline(small_images_file, 'label', [IntDecoder(), Convert(np.int8), ReplaceLabel([1], 300)],
                     np.arange(4))


# ------------------------------------------------------------ RandomResizedCrop


def crops_reference(images, indices, seed, scale, ratio, size):
    """Reference: each sample's box from the shared kernel with its key, the crop cut with
    numpy and resized with OpenCV's INTER_AREA."""
    out, boxes = [], []
    height, width = images.shape[1:3]
    for image, index in zip(images, indices):
        key = np.uint64(sample_key_py(seed, index))
        top, left, h, w = random_resized_crop_box(height, width, key, scale[0], scale[1], math.log(ratio[0]),
                                                  math.log(ratio[1]))
        crop = np.ascontiguousarray(image[top:top + h, left:left + w])
        resized = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        out.append(resized.reshape(size, size, image.shape[2]))
        boxes.append((top, left, h, w))
    return np.stack(out), np.array(boxes)


@pytest.mark.parametrize('field', ['image', 'gray'])
def test_random_resized_crop_matches_the_reference(square_file, square, field):
    indices = shuffled(M, 70, seed=1)
    ops = [SimpleRGBImageDecoder(), RandomResizedCrop((0.08, 1.0), (3 / 4, 4 / 3), 12)]
    out = run_pipeline(square_file, field, ops, indices, seed=3, epoch=1)
    channels = 3 if field == 'image' else 1
    assert out.shape == (70, 12, 12, channels) and out.dtype == np.uint8
    seed = op_seed(square_file, field, ops, 1, seed=3, epoch=1)
    expected, boxes = crops_reference(square[field][indices], indices, seed, (0.08, 1.0), (3 / 4, 4 / 3), 12)
    np.testing.assert_array_equal(out, expected)
    assert len({tuple(b) for b in boxes}) > 50                                  # boxes vary per sample
    area = boxes[:, 2] * boxes[:, 3] / SIDE ** 2
    assert area.min() < 0.3 and area.max() > 0.7


def test_random_resized_crop_of_a_fixed_area_is_a_window_of_the_image(square_file, square):
    # a quarter of the area, square: 16x16 windows, copied as they are into 16x16 outputs
    indices = shuffled(M, 60, seed=2)
    out = run_images(square_file, [RandomResizedCrop((0.25, 0.25), (1, 1), 16)], indices, seed=4)
    positions = []
    for k, index in enumerate(indices):
        image = square['image'][index]
        found = [(y, x) for y in range(17) for x in range(17)
                 if np.array_equal(out[k], image[y:y + 16, x:x + 16])]
        assert found, f"output {k} is not a 16x16 window of sample {index}"
        positions.append(found[0])
    positions = np.array(positions)
    assert positions.min() == 0 and positions.max() >= 14 and len({tuple(p) for p in positions}) > 40


def test_random_resized_crop_of_the_whole_image_averages_2x2_blocks(square_file, square):
    indices = np.arange(M)
    out = run_images(square_file, [RandomResizedCrop((1.0, 1.0), (1.0, 1.0), SIDE // 2)], indices, seed=0)
    blocks = square['image'].astype(np.float64).reshape(M, SIDE // 2, 2, SIDE // 2, 2, 3).mean(axis=(2, 4))
    # INTER_AREA at an integer factor is the block mean, rounded (tolerance: the rounding)
    assert np.abs(out - blocks).max() <= 0.5 + 1e-9


def test_random_resized_crop_is_deterministic_and_independent_of_chunks(square_file):
    indices = shuffled(M, 50, seed=7)
    op = RandomResizedCrop((0.1, 0.9), (0.5, 2.0), 10)
    out = run_images(square_file, [op], indices, seed=5)
    np.testing.assert_array_equal(run_images(square_file, [op], indices, seed=5, chunk=3, workers=2), out)
    np.testing.assert_array_equal(run_images(square_file, [op], indices[::-1], seed=5), out[::-1])
    assert not np.array_equal(run_images(square_file, [op], indices, seed=6), out)


@pytest.mark.parametrize('kwargs,match', [(dict(scale=(0, 1), ratio=(1, 1), size=8), 'scale'),
                                          (dict(scale=(0.5, 0.2), ratio=(1, 1), size=8), 'scale'),
                                          (dict(scale=(0.5,), ratio=(1, 1), size=8), 'scale'),
                                          (dict(scale=(0.1, 1), ratio=(2, 1), size=8), 'ratio'),
                                          (dict(scale=(0.1, 1), ratio=(1, 1), size=0), 'size'),
                                          (dict(scale=(0.1, 1), ratio=(1, 1), size=8.5), 'size')])
def test_random_resized_crop_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=rf"RandomResizedCrop {match}"):
        RandomResizedCrop(**kwargs)


def test_random_resized_crop_needs_numpy_images_opencv_resizes(square_file):
    op = RandomResizedCrop((0.1, 1), (1, 1), 8)
    with pytest.raises(ValueError, match=r"RandomResizedCrop works on numpy image batches"):
        run_images(square_file, [ToTensor(), op], np.arange(4))
    with pytest.raises(ValueError, match=r"RandomResizedCrop resizes images of type uint8.*got int32"):
        run_images(square_file, [Convert(np.int32), op], np.arange(4))


# ------------------------------------------------------------ colour jitter


def color_draws(seed, indices, p, magnitude):
    """(applied, factor) per sample: draw 0 below p, factor lo + (hi - lo) * draw 1."""
    lo, hi = max(0.0, 1.0 - magnitude), 1.0 + magnitude
    keys = [sample_key_py(seed, index) for index in indices]
    applied = np.array([uniform_py(key, 0) < p for key in keys])
    factors = np.array([lo + (hi - lo) * uniform_py(key, 1) for key in keys])
    return applied, factors


def gray_of(image):
    """``trunc(0.2989 r + 0.587 g + 0.114 b)`` per pixel, exactly (in integers)."""
    x = image.astype(np.int64)
    return (2989 * x[..., 0] + 5870 * x[..., 1] + 1140 * x[..., 2]) // 10000


def saturation_blend(image, f):
    """``gray + floor(f * (x - gray))`` clipped, ``f`` and the product in float32."""
    gray = gray_of(image)[..., None]
    step = np.floor(np.float32(f) * (image.astype(np.float32) - gray.astype(np.float32)))
    return np.clip(gray + step, 0, 255).astype(np.uint8)


def brightness_reference(image, f):
    return np.clip(f * image.astype(np.float64), 0, 255).astype(np.uint8)


def contrast_reference(image, f):
    mean = gray_of(image).mean()
    return np.clip(f * image.astype(np.float64) + (1 - f) * mean, 0, 255).astype(np.uint8)


def saturation_reference(image, f):
    return saturation_blend(image, f)


COLOR_OPS = [(RandomBrightness, brightness_reference), (RandomContrast, contrast_reference),
             (RandomSaturation, saturation_reference)]


def jitter_reference(images, applied, factors, reference):
    return np.stack([reference(image, f) if a else image for image, a, f in zip(images, applied, factors)])


@pytest.mark.parametrize('cls,reference', COLOR_OPS)
@pytest.mark.parametrize('magnitude,p', [(0.4, 0.5), (1.5, 0.7)])
def test_color_jitter_matches_the_reference(square_file, square, cls, reference, magnitude, p):
    indices = shuffled(M, 90, seed=8)
    ops = [SimpleRGBImageDecoder(), cls(magnitude, p)]
    out = run_pipeline(square_file, 'image', ops, indices, seed=12, epoch=1)
    applied, factors = color_draws(op_seed(square_file, 'image', ops, 1, 12, 1), indices, p, magnitude)
    assert abs(applied.mean() - p) < 0.15 and factors.min() >= max(0, 1 - magnitude)
    originals = square['image'][indices]
    np.testing.assert_array_equal(out, jitter_reference(originals, applied, factors, reference))
    changed = (out != originals).any(axis=(1, 2, 3))
    assert (changed <= applied).all() and changed.sum() >= applied.sum() - 2
    if magnitude > 1:
        assert (out[applied] == 255).any() and (factors == 0).sum() == 0    # the clip is exercised
    again = run_pipeline(square_file, 'image', ops, indices, seed=12, epoch=1, chunk=5, workers=2)
    np.testing.assert_array_equal(again, out)


@pytest.mark.parametrize('cls,reference', COLOR_OPS)
def test_color_jitter_p_zero_and_one(small_images_file, originals, cls, reference):
    indices = shuffled(N, 64, seed=3)
    np.testing.assert_array_equal(run_images(small_images_file, [cls(0.8, p=0.0)], indices, seed=4),
                                  originals[indices])
    ops = [SimpleRGBImageDecoder(), cls(0.8, p=1.0)]
    out = run_pipeline(small_images_file, 'image', ops, indices, seed=4)
    applied, factors = color_draws(op_seed(small_images_file, 'image', ops, 1, 4), indices, 1.0, 0.8)
    assert applied.all()
    # with this seed no factor lies within 1/100 of 1 (where a jitter can leave an image as it is:
    # e.g. brightness 1.003 moves no value of 0..255 to the next integer)
    assert (np.abs(factors - 1) > 0.01).all()
    assert (out != originals[indices]).any(axis=(1, 2, 3)).all(), "p=1: every image changes"
    np.testing.assert_array_equal(out, jitter_reference(originals[indices], applied, factors, reference))
    # magnitude 0: the factor is 1, nothing changes
    np.testing.assert_array_equal(run_images(small_images_file, [cls(0, p=1.0)], indices), originals[indices])


def test_brightness_of_grayscale_images(square_file, square):
    indices = shuffled(M, 40)
    ops = [SimpleRGBImageDecoder(), RandomBrightness(0.5, 0.9)]
    out = run_pipeline(square_file, 'gray', ops, indices, seed=2)
    applied, factors = color_draws(op_seed(square_file, 'gray', ops, 1, 2), indices, 0.9, 0.5)
    np.testing.assert_array_equal(out, jitter_reference(square['gray'][indices], applied, factors,
                                                        brightness_reference))


@pytest.mark.parametrize('cls', [RandomContrast, RandomSaturation])
def test_contrast_and_saturation_need_rgb(square_file, cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__} needs RGB images \(3 channels\)"):
        run_pipeline(square_file, 'gray', [SimpleRGBImageDecoder(), cls(0.2)], np.arange(4))


@pytest.mark.parametrize('cls', [RandomBrightness, RandomContrast, RandomSaturation])
def test_color_jitter_checks_its_arguments_and_input(square_file, cls):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name} magnitude must be a number >= 0"):
        cls(-0.1)
    with pytest.raises(ValueError, match=rf"{name} p must be a probability in \[0, 1\]"):
        cls(0.2, p=1.5)
    with pytest.raises(ValueError, match=rf"{name} takes numbers"):
        cls('strong')
    with pytest.raises(ValueError, match=rf"{name} works on uint8 images, got float32"):
        run_images(square_file, [Convert(np.float32), cls(0.2)], np.arange(4))
    with pytest.raises(ValueError, match=rf"{name} works on numpy image batches"):
        run_images(square_file, [ToTensor(), cls(0.2)], np.arange(4))
    assert repr(cls(0.25, p=0.75)) == f"{name}(magnitude=0.25, p=0.75)"


# ------------------------------------------------------------ ModuleWrapper


class FlipWidth(torch.nn.Module):
    def forward(self, x):
        return x.flip(-1)


def test_module_wrapper_applies_the_module(small_images_file, originals):
    indices = shuffled(N, 50)
    ops = [SimpleRGBImageDecoder(), ToTensor(), ToTorchImage(), ModuleWrapper(FlipWidth())]
    pipeline = make_pipeline(small_images_file, 'image', ops)
    pipeline.declare()
    assert pipeline.states[-1] == pipeline.states[-2] and pipeline.allocations[-1] is None
    out = run_pipeline(small_images_file, 'image', ops, indices)
    assert isinstance(out, torch.Tensor) and out.shape == (50, 3, 16, 20)
    np.testing.assert_array_equal(out.numpy(), originals[indices][:, :, ::-1].transpose(0, 3, 1, 2))


def test_module_wrapper_may_change_the_shape_as_the_last_step(small_images_file, originals):
    ops = [ToTensor(), ToTorchImage(), Convert(torch.float32), ModuleWrapper(torch.nn.AvgPool2d(2))]
    out = run_images(small_images_file, ops, np.arange(30))
    assert out.shape == (30, 3, 8, 10)
    blocks = originals[:30].astype(np.float64).reshape(30, 8, 2, 10, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(out.numpy(), blocks.transpose(0, 3, 1, 2), rtol=0, atol=1e-4)


def test_module_wrapper_needs_a_module_and_a_tensor(small_images_file):
    with pytest.raises(ValueError, match=r"ModuleWrapper wraps a torch.nn.Module"):
        ModuleWrapper(lambda x: x)
    with pytest.raises(ValueError, match=r"ModuleWrapper\(FlipWidth\(\)\).*numpy batch.*put ToTensor\(\)"):
        run_images(small_images_file, [ModuleWrapper(FlipWidth())], np.arange(4))
    assert repr(ModuleWrapper(torch.nn.Identity())) == "ModuleWrapper(Identity())"


def test_reprs():
    mask, alpha = np.zeros((4, 4, 3)), np.ones((4, 4))
    assert repr(ImageMixup(0.2, True)) == "ImageMixup(alpha=0.2, same_lambda=True)"
    assert repr(LabelMixup(1, False)) == "LabelMixup(alpha=1.0, same_lambda=False)"
    assert repr(MixupToOneHot(10)) == "MixupToOneHot(num_classes=10)"
    assert repr(Poison(mask, alpha, [5, 1])) == ("Poison(mask=<(4, 4, 3) float64>, alpha=<(4, 4) float64>, "
                                                 "indices=<2 samples>, clamp=(0.0, 255.0))")
    assert repr(ReplaceLabel(np.arange(3), 1)) == "ReplaceLabel(indices=<3 samples>, new_label=1)"
    assert repr(RandomResizedCrop((0.5, 1), (1, 2), 8)) == \
        "RandomResizedCrop(scale=(0.5, 1.0), ratio=(1.0, 2.0), size=8)"


def test_sample_key_twin_is_what_the_references_use():
    # the references above call the Python twins; the kernels use the compiled functions
    for index in (0, 7, 2**33):
        assert sample_key(np.uint64(derive_seed(4)), np.int64(index)) == sample_key_py(derive_seed(4), index)
