"""CutMix and LabelCutMix against a numpy reference computed here (integer boxes: exact)."""
import math

import numpy as np
import pytest
from ffcv_format import ImageField, IntField, RGBImageField
from ffcv_format.testing import write_dataset

from ffcv_ops import Convert, IntDecoder, MixupToOneHot, SimpleRGBImageDecoder, ToTensor
from ffcv_ops.kernels.random import beta_variate, sample_key_py, stream_seed, uniform_py
from ffcv_ops.state import State
from ffcv_ops.testing import OperationTests, make_pipeline, run_pipeline
from ffcv_ops.transforms.cutmix import CutMix, LabelCutMix

N = 60
HEIGHT, WIDTH = 13, 17           # odd sizes


@pytest.fixture(scope='module')
def cutmix_file(tmp_path_factory):
    """60 samples: a 13x17 RGB image with values 1..255, its 1-channel version, a 1x1 RGB
    image, and the label k (the sample's index)."""
    rng = np.random.default_rng(41)
    samples = []
    for k in range(N):
        image = rng.integers(1, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        samples.append((image, image[:, :, :1].copy(), rng.integers(0, 256, (1, 1, 3), dtype=np.uint8), k))
    return write_dataset(tmp_path_factory.mktemp('cutmix') / 'cutmix.beton',
                         {'image': RGBImageField(write_mode='raw'),
                          'gray': ImageField(write_mode='raw', channels=1),
                          'dot': RGBImageField(write_mode='raw'),
                          'label': IntField()}, samples)


@pytest.fixture(scope='module')
def originals(cutmix_file):
    return {name: np.stack([cutmix_file.read_field(i, name) for i in range(N)])
            for name in ('image', 'gray', 'dot')}


def shuffled(count, seed=0):
    return np.random.default_rng(seed).permutation(N)[:count]


def box_of(seed, index, alpha, height, width):
    """(top, left, bottom, right), the share kept: lam from Beta(alpha, alpha), the centre
    from the two draws after it, half sides floor(sqrt(1 - lam) / 2 * side), clipped."""
    key = sample_key_py(seed, index)
    lam, k = beta_variate(np.uint64(key), 0, alpha, alpha)
    centre_y = min(int(uniform_py(key, k) * height), height - 1)
    centre_x = min(int(uniform_py(key, k + 1) * width), width - 1)
    r = 0.5 * math.sqrt(1.0 - lam)
    half_h, half_w = int(r * height), int(r * width)
    top, left = max(centre_y - half_h, 0), max(centre_x - half_w, 0)
    bottom, right = min(centre_y + half_h, height), min(centre_x + half_w, width)
    return (top, left, bottom, right), 1.0 - (bottom - top) * (right - left) / (height * width)


def cutmix_reference(images, indices, seed, alpha):
    out = images.copy()
    partners = np.roll(images, 1, axis=0)            # image i takes from image i - 1, 0 from the last
    for k, index in enumerate(indices):
        (top, left, bottom, right), _ = box_of(seed, index, alpha, *images.shape[1:3])
        out[k, top:bottom, left:right] = partners[k, top:bottom, left:right]
    return out


@pytest.mark.parametrize('field', ['image', 'gray'])
@pytest.mark.parametrize('alpha', [1.0, 0.3])
def test_cutmix_matches_the_reference(cutmix_file, originals, field, alpha):
    indices = shuffled(50, seed=1)
    out = run_pipeline(cutmix_file, field, [SimpleRGBImageDecoder(), CutMix(alpha)], indices, seed=3, epoch=1)
    seed = stream_seed(3, 1, 'cutmix')
    images = originals[field][indices]
    np.testing.assert_array_equal(out, cutmix_reference(images, indices, seed, alpha))
    kept = np.array([box_of(seed, i, alpha, HEIGHT, WIDTH)[1] for i in indices])
    # each image is its own where kept, the partner's inside the box: the share of pixels equal
    # to the original is at least the share kept (the partner may agree by chance)
    same = (out == images).all(axis=3).mean(axis=(1, 2))
    assert (same >= kept - 1e-12).all()
    assert (kept < 1).sum() > 25 and kept.min() < 0.6


def test_cutmix_of_a_batch_of_one_and_of_one_pixel_changes_nothing(cutmix_file, originals):
    out = run_pipeline(cutmix_file, 'image', [SimpleRGBImageDecoder(), CutMix()], np.array([7]), seed=1)
    np.testing.assert_array_equal(out, originals['image'][[7]])          # its own partner
    out = run_pipeline(cutmix_file, 'dot', [SimpleRGBImageDecoder(), CutMix()], shuffled(20), seed=1)
    np.testing.assert_array_equal(out, originals['dot'][shuffled(20)])   # half sides floor(r * 1) = 0


def test_label_cutmix_rows_match_the_images(cutmix_file, originals):
    indices = shuffled(48, seed=2)
    images = run_pipeline(cutmix_file, 'image', [SimpleRGBImageDecoder(), CutMix(0.8)], indices, seed=5,
                          epoch=2, pipeline_index=0)
    label_ops = [IntDecoder(), Convert(np.int32), LabelCutMix(0.8, image_size=(HEIGHT, WIDTH))]
    rows = run_pipeline(cutmix_file, 'label', label_ops, indices, seed=5, epoch=2, pipeline_index=1)
    assert rows.shape == (48, 3) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows[:, 0], indices)                  # labels are the indices here
    np.testing.assert_array_equal(rows[:, 1], np.roll(indices, 1))
    seed = stream_seed(5, 2, 'cutmix')
    kept = np.array([box_of(seed, i, 0.8, HEIGHT, WIDTH)[1] for i in indices])
    np.testing.assert_array_equal(rows[:, 2], kept.astype(np.float32))
    # the weight is the pixel share the image kept: count where the pasted box is
    pasted = np.zeros(images.shape[:3], bool)
    for k, index in enumerate(indices):
        (top, left, bottom, right), _ = box_of(seed, index, 0.8, HEIGHT, WIDTH)
        pasted[k, top:bottom, left:right] = True
    np.testing.assert_allclose(rows[:, 2], 1 - pasted.mean(axis=(1, 2)), atol=1e-7)
    partners = np.roll(originals['image'][indices], 1, axis=0)
    np.testing.assert_array_equal(images[pasted], partners[pasted])
    # the seed is the shared stream's, wherever the operations are
    image_ops = [SimpleRGBImageDecoder(), CutMix(0.8)]
    image_seed = make_pipeline(cutmix_file, 'image', image_ops).op_seeds(5, 2, 0)[1]
    label_seed = make_pipeline(cutmix_file, 'label', label_ops).op_seeds(5, 2, 1)[2]
    assert int(image_seed) == int(label_seed) == seed


def test_label_cutmix_rows_feed_mixup_to_one_hot(cutmix_file):
    indices = shuffled(40, seed=4)
    ops = [IntDecoder(), LabelCutMix(1.0, image_size=(HEIGHT, WIDTH)), ToTensor(), MixupToOneHot(N)]
    targets = run_pipeline(cutmix_file, 'label', ops, indices, seed=1).numpy()
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    assert targets.shape == (40, N)


def test_cutmix_is_deterministic_and_changes_with_the_epoch(cutmix_file):
    indices = shuffled(40)
    ops = [SimpleRGBImageDecoder(), CutMix()]
    first = run_pipeline(cutmix_file, 'image', ops, indices, seed=2, epoch=0)
    np.testing.assert_array_equal(run_pipeline(cutmix_file, 'image', ops, indices, seed=2, epoch=0, chunk=3,
                                               workers=2), first)
    assert not np.array_equal(run_pipeline(cutmix_file, 'image', ops, indices, seed=2, epoch=1), first)


@pytest.mark.parametrize('cls', [CutMix, LabelCutMix])
@pytest.mark.parametrize('alpha', [0, -1.0, 'x', float('inf'), True])
def test_cutmix_alpha_is_checked(cls, alpha):
    with pytest.raises(ValueError, match=rf"{cls.__name__} alpha must be a positive number"):
        cls(alpha, image_size=8) if cls is LabelCutMix else cls(alpha)


@pytest.mark.parametrize('image_size', [None, 0, (3,), (4, 2.5), 'big', (True, 4)])
def test_label_cutmix_image_size_is_checked(image_size):
    with pytest.raises(ValueError, match=r"LabelCutMix image_size"):
        LabelCutMix(1.0, image_size=image_size)


def test_cutmix_checks_its_input(cutmix_file):
    with pytest.raises(ValueError, match=r"CutMix works on uint8 images, got float32"):
        CutMix().declare_state_and_memory(State(jit_mode=True, shape=(4, 4, 3), dtype=np.dtype('f4')))
    with pytest.raises(ValueError, match=r"CutMix works on numpy image batches"):
        run_pipeline(cutmix_file, 'label', [IntDecoder(), CutMix()], np.arange(4))
    with pytest.raises(ValueError, match=r"LabelCutMix works on integer label batches"):
        run_pipeline(cutmix_file, 'image', [SimpleRGBImageDecoder(), LabelCutMix(1.0, image_size=4)],
                     np.arange(4))


def test_reprs():
    assert repr(CutMix(0.5)) == "CutMix(alpha=0.5)"
    assert repr(LabelCutMix(image_size=32)) == "LabelCutMix(alpha=1.0, image_size=(32, 32))"


class TestCutMixConformance(OperationTests):
    random = True

    def make_operation(self):
        return CutMix(1.0)


class TestLabelCutMixConformance(OperationTests):
    random = True

    def make_field(self):
        return IntField()

    def make_samples(self):
        return [(k % 10,) for k in range(self.num_samples)]

    def make_operation(self):
        return LabelCutMix(1.0, image_size=(12, 10))
