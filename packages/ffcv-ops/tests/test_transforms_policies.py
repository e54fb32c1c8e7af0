"""RandAugment and TrivialAugmentWide (torchvision's policies) and their 14 ops against
numpy references computed here. Colour and histogram ops: exact. Geometric ops: exact
wherever the reference's source point (from numpy's inverse of the composed forward matrix)
is not within 1e-6 of a rounding boundary; whole policies are compared image by image
where none of the image's geometric steps has such a pixel (most images)."""
import math

import numpy as np
import pytest
from ffcv_format import ImageField, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset

from ffcv_ops import SimpleRGBImageDecoder, ToTensor
from ffcv_ops.kernels.policy_ops import NUM_OPS, OP_NAMES, apply_policy_op, policy_work
from ffcv_ops.kernels.random import sample_key_py, uniform_py
from ffcv_ops.state import State
from ffcv_ops.testing import OperationTests, make_pipeline, run_pipeline
from ffcv_ops.transforms.policies import (RandAugment, TrivialAugmentWide, rand_augment_space,
                                          trivial_augment_space)

N = 120
HEIGHT, WIDTH = 11, 13
LARGE_HEIGHT, LARGE_WIDTH = 40, 33         # over 255 pixels: Equalize acts (its step is 0 below)


@pytest.fixture(scope='module')
def policy_file(tmp_path_factory):
    """120 samples: an 11x13 RGB photo, its first channel, a 1x1 RGB image, a 40x33 RGB photo."""
    rng = np.random.default_rng(51)
    samples = []
    for k in range(N):
        photo = photo_like_image(rng, HEIGHT, WIDTH)
        samples.append((photo, photo[:, :, :1].copy(), rng.integers(0, 256, (1, 1, 3), dtype=np.uint8),
                        photo_like_image(rng, LARGE_HEIGHT, LARGE_WIDTH)))
    return write_dataset(tmp_path_factory.mktemp('policies') / 'policies.beton',
                         {'image': RGBImageField(write_mode='raw'),
                          'gray': ImageField(write_mode='raw', channels=1),
                          'dot': RGBImageField(write_mode='raw'),
                          'large': RGBImageField(write_mode='raw')}, samples)


@pytest.fixture(scope='module')
def originals(policy_file):
    return {name: np.stack([policy_file.read_field(i, name) for i in range(N)])
            for name in ('image', 'gray', 'dot', 'large')}


def op_seed(reader, field, op, seed, epoch=0):
    return int(make_pipeline(reader, field, [SimpleRGBImageDecoder(), op]).op_seeds(seed, epoch, 0)[1])


# ------------------------------------------------------------ references of the ops


def to_uint8(values):
    return np.clip(values, 0, 255).astype(np.uint8)


def gray_of(image):
    """``trunc(0.2989 r + 0.587 g + 0.114 b)`` per pixel, exactly (in integers)."""
    x = image.astype(np.int64)
    return (2989 * x[..., 0] + 5870 * x[..., 1] + 1140 * x[..., 2]) // 10000


def saturation_blend(image, f):
    """``gray + floor(f * (x - gray))`` clipped, ``f`` and the product in float32."""
    gray = gray_of(image)[..., None]
    step = np.floor(np.float32(f) * (image.astype(np.float32) - gray.astype(np.float32)))
    return np.clip(gray + step, 0, 255).astype(np.uint8)


def warp_reference(image, linear, translate=(0.0, 0.0), center=(0.0, 0.0), fill=0):
    """Nearest-neighbour inverse warp about ``center`` (centred coordinates, y down);
    returns the image and where (per pixel) the source point is within 1e-6 of a rounding
    boundary."""
    height, width, channels = image.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    points = np.stack([xs - (width - 1) / 2 - center[0] - translate[0],
                       ys - (height - 1) / 2 - center[1] - translate[1]])
    source = np.tensordot(np.linalg.inv(linear), points, axes=1)
    source_x = source[0] + center[0] + (width - 1) / 2
    source_y = source[1] + center[1] + (height - 1) / 2
    ambiguous = ((np.abs(source_x - np.floor(source_x) - 0.5) < 1e-6)
                 | (np.abs(source_y - np.floor(source_y) - 0.5) < 1e-6))
    ix, iy = np.rint(source_x), np.rint(source_y)
    inside = (ix >= 0) & (ix <= width - 1) & (iy >= 0) & (iy <= height - 1)
    out = np.empty_like(image)
    out[:] = fill
    out[inside] = image[iy[inside].astype(int), ix[inside].astype(int)]
    return out, ambiguous


def rotation(degrees):
    """Clockwise on screen (y down) for positive degrees."""
    a = math.radians(degrees)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def sharpness_reference(image, factor):
    height, width = image.shape[:2]
    if height <= 2 or width <= 2:
        return image.copy()
    x = image.astype(np.float64)
    weights = np.ones((3, 3))
    weights[1, 1] = 5
    weights /= 13
    blurred = sum(weights[dy, dx] * x[dy:height - 2 + dy, dx:width - 2 + dx]
                  for dy in range(3) for dx in range(3))
    smooth = x.copy()
    smooth[1:-1, 1:-1] = np.round(blurred)
    return to_uint8(factor * x + (1 - factor) * smooth)


def auto_contrast_reference(image):
    out = image.copy()
    for c in range(image.shape[2]):
        channel = image[..., c]
        low, high = channel.min(), channel.max()
        if high > low:
            scale = np.float32(255) / np.float32(int(high) - int(low))
            stretched = (channel.astype(np.float32) - np.float32(low)) * scale
            out[..., c] = np.clip(stretched, 0, 255).astype(np.uint8)
    return out


def equalize_reference(image):
    out = image.copy()
    for c in range(image.shape[2]):
        histogram = np.bincount(image[..., c].ravel(), minlength=256)
        present = histogram[histogram != 0]
        step = present[:-1].sum() // 255
        if step == 0:
            continue
        table = (np.cumsum(histogram) + step // 2) // step
        table = np.clip(np.concatenate([[0], table[:-1]]), 0, 255)
        out[..., c] = table[image[..., c]]
    return out


def policy_op_reference(image, name, magnitude, fill):
    """torchvision's ``_apply_op`` on uint8: (result, where a rounding boundary was near:
    per pixel for the geometric ops, False for the others)."""
    height, width, channels = image.shape
    x = image.astype(np.float64)
    corner = (-width / 2, -height / 2)
    if name == 'ShearX':
        shear = math.atan(magnitude)
        along_x = np.array([[1.0, -math.tan(shear)], [0.0, 1.0]])
        return warp_reference(image, along_x, center=corner, fill=fill)
    if name == 'ShearY':
        shear = math.atan(magnitude)
        along_y = np.array([[1.0, 0.0], [-math.tan(shear), 1.0]])
        return warp_reference(image, along_y, center=corner, fill=fill)
    if name == 'TranslateX':
        return warp_reference(image, np.eye(2), translate=(int(magnitude), 0), fill=fill)
    if name == 'TranslateY':
        return warp_reference(image, np.eye(2), translate=(0, int(magnitude)), fill=fill)
    if name == 'Rotate':                                        # counter-clockwise on screen
        return warp_reference(image, rotation(-magnitude), fill=fill)
    f = 1.0 + magnitude
    if name == 'Brightness':
        return to_uint8(f * x), False
    if name == 'Color':
        if channels == 1:
            return image.copy(), False
        return saturation_blend(image, f), False
    if name == 'Contrast':
        gray = image[..., 0] if channels == 1 else gray_of(image)
        return to_uint8(f * x + (1 - f) * (gray.sum(dtype=np.int64) / gray.size)), False
    if name == 'Sharpness':
        return sharpness_reference(image, f), False
    if name == 'Posterize':
        return image & np.uint8(256 - 2 ** (8 - int(magnitude))), False
    if name == 'Solarize':
        return np.where(image >= magnitude, 255 - image, image).astype(np.uint8), False
    if name == 'AutoContrast':
        return auto_contrast_reference(image), False
    if name == 'Equalize':
        return equalize_reference(image), False
    return image.copy(), False


def run_op(image, name, magnitude, fill=0):
    out = image.copy()
    channels = image.shape[2]
    apply_policy_op(out, policy_work(*image.shape), OP_NAMES.index(name), float(magnitude),
                    np.full(channels, fill, np.uint8))
    return out


# ------------------------------------------------------------ the ops one by one


OP_MAGNITUDES = {'Identity': [0.0], 'ShearX': [0.3, -0.99, 0.05], 'ShearY': [-0.3, 0.7],
                 'TranslateX': [4.9, -3.2, 20.0], 'TranslateY': [-5.5, 2.0], 'Rotate': [30.0, -135.0, 7.5],
                 'Brightness': [0.9, -0.99, -0.3], 'Color': [0.9, -0.9], 'Contrast': [0.9, -0.6],
                 'Sharpness': [0.9, -0.99, 0.4], 'Posterize': [8, 6, 4, 2, 0],
                 'Solarize': [255.0, 178.5, 0.0, 40.2],
                 'AutoContrast': [0.0], 'Equalize': [0.0]}


@pytest.mark.parametrize('name', OP_NAMES)
@pytest.mark.parametrize('field', ['image', 'gray', 'dot', 'large'])
def test_each_op_matches_its_reference(originals, name, field):
    for magnitude in OP_MAGNITUDES[name]:
        for image in originals[field][:12]:
            expected, ambiguous = policy_op_reference(image, name, magnitude, 17)
            out = run_op(image, name, magnitude, 17)
            ambiguous = np.broadcast_to(np.asarray(ambiguous)[..., None], out.shape) if np.ndim(ambiguous) \
                else np.zeros(out.shape, bool)
            assert ambiguous.mean() < 0.1      # e.g. sin 30 = 1/2: the centre column lands on half pixels
            np.testing.assert_array_equal(out[~ambiguous], expected[~ambiguous],
                                          err_msg=f"{name}({magnitude}) on {field}")


def test_ops_change_images_where_they_should(originals):
    image = originals['large'][0]
    for name in OP_NAMES[1:]:
        magnitude = {'Posterize': 2, 'Solarize': 100.0}.get(name, 0.5 if 'Shear' not in name else 0.3)
        if name in ('TranslateX', 'TranslateY', 'Rotate'):
            magnitude = 5.0
        assert not np.array_equal(run_op(image, name, magnitude), image), name
    # quarter turn of a square is np.rot90 (counter-clockwise), equalize spreads the values
    square = np.ascontiguousarray(originals['large'][1][:33, :33])
    np.testing.assert_array_equal(run_op(square, 'Rotate', 90.0), np.rot90(square))
    equalized = run_op(image, 'Equalize', 0.0)
    assert equalized.max() >= 250 and np.ptp(equalized) > np.ptp(image)
    stretched = run_op(image, 'AutoContrast', 0.0)
    assert stretched.reshape(-1, 3).min(axis=0).tolist() == [0, 0, 0]
    assert stretched.reshape(-1, 3).max(axis=0).tolist() == [255, 255, 255]


# ------------------------------------------------------------ the magnitude tables


def test_magnitude_tables_are_torchvisions():
    magnitudes, signed = rand_augment_space(31, 100, 200)
    row = dict(zip(OP_NAMES, magnitudes[:, 9]))
    assert row['ShearX'] == pytest.approx(0.09) and row['ShearY'] == pytest.approx(0.09)
    assert row['TranslateX'] == pytest.approx(150 / 331 * 200 * 0.3)
    assert row['TranslateY'] == pytest.approx(150 / 331 * 100 * 0.3)
    assert row['Rotate'] == pytest.approx(9.0) and row['Brightness'] == pytest.approx(0.27)
    assert row['Posterize'] == 7 and row['Solarize'] == pytest.approx(178.5)
    assert row['Identity'] == row['AutoContrast'] == row['Equalize'] == 0
    np.testing.assert_array_equal(magnitudes[OP_NAMES.index('Posterize')][[0, 30]], [8, 4])
    assert [n for n, s in zip(OP_NAMES, signed) if not s] == ['Identity', 'Posterize', 'Solarize',
                                                                 'AutoContrast', 'Equalize']
    wide, counts, wide_signed = trivial_augment_space(31)
    np.testing.assert_allclose(wide[:, 30][[1, 3, 5, 6, 10, 11]], [0.99, 32.0, 135.0, 0.99, 2, 0.0])
    assert counts.tolist() == [1] + [31] * 11 + [1, 1]
    assert (wide_signed == signed).all()


# ------------------------------------------------------------ the policies


def rand_augment_reference(image, key, num_ops, magnitudes, signed, fill):
    ambiguous = False
    for position in range(num_ops):
        op = min(int(uniform_py(key, 2 * position) * NUM_OPS), NUM_OPS - 1)
        magnitude = magnitudes[op]
        if signed[op] and uniform_py(key, 2 * position + 1) < 0.5:
            magnitude = -magnitude
        image, near = policy_op_reference(image, OP_NAMES[op], magnitude, fill)
        ambiguous |= bool(np.any(near))
    return image, ambiguous


@pytest.mark.parametrize('field', ['image', 'gray', 'large'])
@pytest.mark.parametrize('num_ops,magnitude,bins', [(2, 9, 31), (3, 14, 15), (1, 0, 2)])
def test_rand_augment_matches_the_reference(policy_file, originals, field, num_ops, magnitude, bins):
    op = RandAugment(num_ops, magnitude, bins, fill=5)
    indices = np.random.default_rng(2).permutation(N)[:100]
    out = run_pipeline(policy_file, field, [SimpleRGBImageDecoder(), op], indices, seed=6, epoch=1)
    seed = op_seed(policy_file, field, op, 6, 1)
    table, signed = rand_augment_space(bins, *originals[field].shape[1:3])
    compared = 0
    for k, index in enumerate(indices):
        expected, ambiguous = rand_augment_reference(originals[field][index], sample_key_py(seed, index),
                                                     num_ops, table[:, magnitude], signed, 5)
        if not ambiguous:
            np.testing.assert_array_equal(out[k], expected, err_msg=f"sample {index}")
            compared += 1
    assert compared >= 50           # the others have a pixel near a rounding boundary (e.g. at 30 degrees)
    ops_drawn = {min(int(uniform_py(sample_key_py(seed, i), 2 * j) * 14), 13)
                 for i in indices for j in range(num_ops)}
    assert len(ops_drawn) == 14


def test_trivial_augment_matches_the_reference(policy_file, originals):
    op = TrivialAugmentWide(fill=(1, 2, 3))
    indices = np.arange(N)
    out = run_pipeline(policy_file, 'image', [SimpleRGBImageDecoder(), op], indices, seed=2)
    seed = op_seed(policy_file, 'image', op, 2)
    wide, counts, signed = trivial_augment_space(31)
    compared, ops_drawn = 0, set()
    for k, index in enumerate(indices):
        key = sample_key_py(seed, index)
        code = min(int(uniform_py(key, 0) * 14), 13)
        ops_drawn.add(code)
        magnitude = wide[code, min(int(uniform_py(key, 1) * counts[code]), counts[code] - 1)]
        if signed[code] and uniform_py(key, 2) < 0.5:
            magnitude = -magnitude
        expected, ambiguous = policy_op_reference(originals['image'][index], OP_NAMES[code], magnitude,
                                                  np.array([1, 2, 3], np.uint8))
        if not np.any(ambiguous):
            np.testing.assert_array_equal(out[k], expected, err_msg=f"sample {index}: {OP_NAMES[code]}")
            compared += 1
    assert compared >= 100 and len(ops_drawn) == 14


@pytest.mark.parametrize('op', [RandAugment(), TrivialAugmentWide()])
def test_policies_on_one_pixel_and_a_batch_of_one(policy_file, originals, op):
    out = run_pipeline(policy_file, 'dot', [SimpleRGBImageDecoder(), op], np.arange(N), seed=1)
    assert out.shape == (N, 1, 1, 3)
    whole = run_pipeline(policy_file, 'image', [SimpleRGBImageDecoder(), op], np.arange(N), seed=1)
    single = run_pipeline(policy_file, 'image', [SimpleRGBImageDecoder(), op], np.array([33]), seed=1)
    np.testing.assert_array_equal(single[0], whole[33])


def test_rand_augment_without_ops_changes_nothing(policy_file, originals):
    out = run_pipeline(policy_file, 'image', [SimpleRGBImageDecoder(), RandAugment(num_ops=0)], np.arange(N))
    np.testing.assert_array_equal(out, originals['image'])


@pytest.mark.parametrize('op', [RandAugment(), TrivialAugmentWide()])
def test_policies_are_deterministic_and_change_with_the_epoch(policy_file, op):
    indices = np.arange(N)[::-1]
    ops = [SimpleRGBImageDecoder(), op]
    first = run_pipeline(policy_file, 'image', ops, indices, seed=3)
    again = run_pipeline(policy_file, 'image', ops, indices, seed=3, chunk=7, workers=2)
    np.testing.assert_array_equal(again, first)
    assert not np.array_equal(run_pipeline(policy_file, 'image', ops, indices, seed=3, epoch=1), first)


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_ops=-1), r"RandAugment num_ops must be an integer >= 0"),
    (dict(num_ops=1.5), r"RandAugment num_ops"),
    (dict(magnitude=31), r"RandAugment magnitude must be an integer in \[0, num_magnitude_bins - 1 = 30\]"),
    (dict(magnitude=-1), r"RandAugment magnitude"),
    (dict(num_magnitude_bins=1, magnitude=0), r"RandAugment num_magnitude_bins must be an integer >= 2"),
    (dict(fill=(1, 300)), r"RandAugment fill must be")])
def test_rand_augment_checks_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandAugment(**kwargs)


def test_trivial_augment_checks_its_arguments_and_input(policy_file):
    with pytest.raises(ValueError, match=r"TrivialAugmentWide num_magnitude_bins must be an integer >= 2"):
        TrivialAugmentWide(num_magnitude_bins=True)
    with pytest.raises(ValueError, match=r"TrivialAugmentWide fill must be"):
        TrivialAugmentWide(fill='white')
    rgba = State(jit_mode=True, shape=(8, 8, 4), dtype=np.dtype(np.uint8))
    for op in (TrivialAugmentWide(), RandAugment()):
        with pytest.raises(ValueError, match=rf"{type(op).__name__} works on images of 1 or 3 channels"):
            op.declare_state_and_memory(rgba)
        with pytest.raises(ValueError, match=rf"{type(op).__name__} works on numpy image batches"):
            run_pipeline(policy_file, 'image', [SimpleRGBImageDecoder(), ToTensor(), op], np.arange(4))


def test_reprs():
    assert repr(RandAugment(3, 5, 11, fill=(1, 2, 3))) == ("RandAugment(num_ops=3, magnitude=5, "
                                                          "num_magnitude_bins=11, fill=(1, 2, 3))")
    assert repr(TrivialAugmentWide(15)) == "TrivialAugmentWide(num_magnitude_bins=15, fill=0)"


class TestRandAugmentConformance(OperationTests):
    random = True

    def make_operation(self):
        return RandAugment(num_ops=3, magnitude=12, fill=(30, 60, 90))


class TestTrivialAugmentWideConformance(OperationTests):
    random = True

    def make_operation(self):
        return TrivialAugmentWide()
