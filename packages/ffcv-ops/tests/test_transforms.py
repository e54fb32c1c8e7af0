"""Transforms against numpy/torch references computed here."""
import numpy as np
import pytest
import torch

from ffcv_ops import (Convert, Cutout, DeviceUnavailableError, IntDecoder, NormalizeImage, RandomHorizontalFlip, RandomTranslate,
                      SimpleRGBImageDecoder, Squeeze, ToDevice, ToTensor, ToTorchImage, View)
from ffcv_ops.testing import make_pipeline, run_batch, run_pipeline, storage_state_of

N = 400
MEAN = np.array([124.0, 116.5, 104.0])
STD = np.array([58.4, 57.1, 57.4])


@pytest.fixture(scope='module')
def originals(small_images_file):
    return np.stack([small_images_file.read_field(i, 'image') for i in range(N)])


def run_images(reader, ops, indices=None, **options):
    indices = np.arange(N) if indices is None else indices
    return run_pipeline(reader, 'image', [SimpleRGBImageDecoder(), *ops], indices, **options)


# ------------------------------------------------------------ RandomHorizontalFlip


def test_flip_probability_zero_and_one(small_images_file, originals):
    np.testing.assert_array_equal(run_images(small_images_file, [RandomHorizontalFlip(0.0)]), originals)
    np.testing.assert_array_equal(run_images(small_images_file, [RandomHorizontalFlip(1.0)]),
                                  originals[:, :, ::-1])


def flipped_rows(out, originals):
    mirrored = (out == originals[:, :, ::-1]).all(axis=(1, 2, 3))
    unchanged = (out == originals).all(axis=(1, 2, 3))
    assert (mirrored | unchanged).all(), "an image is neither itself nor its mirror"
    return mirrored


def test_flip_half_of_the_images_deterministically(small_images_file, originals):
    out = run_images(small_images_file, [RandomHorizontalFlip()], seed=3)
    flipped = flipped_rows(out, originals)
    assert 0.4 < flipped.mean() < 0.6
    again = run_images(small_images_file, [RandomHorizontalFlip()], seed=3, chunk=7, workers=2)
    np.testing.assert_array_equal(again, out)
    # per sample: the same draw in another batch order
    order = np.random.default_rng(0).permutation(N)
    shuffled = run_images(small_images_file, [RandomHorizontalFlip()], indices=order, seed=3)
    np.testing.assert_array_equal(shuffled, out[order])
    other_epoch = flipped_rows(run_images(small_images_file, [RandomHorizontalFlip()], seed=3, epoch=1),
                               originals)
    assert 0.3 < (other_epoch != flipped).mean() < 0.7


@pytest.mark.parametrize('size', [24, 80])   # 24x24: one compiled call per chunk; 80x80: OpenCV per image
def test_flip_of_small_and_large_images_draws_the_same_samples(jpeg_file, size):
    from ffcv_ops import CenterCropRGBImageDecoder
    indices = np.arange(40)
    decoded = run_pipeline(jpeg_file, 'image', [CenterCropRGBImageDecoder((size, size))], indices)
    out = run_pipeline(jpeg_file, 'image', [CenterCropRGBImageDecoder((size, size)), RandomHorizontalFlip()],
                       indices, seed=11)
    flipped = flipped_rows(out, decoded)
    # which samples are mirrored depends on (seed, sample) only, not on the image size or the path
    other = 80 if size == 24 else 24
    reference = run_pipeline(jpeg_file, 'image', [CenterCropRGBImageDecoder((other, other))], indices)
    other_out = run_pipeline(jpeg_file, 'image', [CenterCropRGBImageDecoder((other, other)),
                                                  RandomHorizontalFlip()], indices, seed=11)
    np.testing.assert_array_equal(flipped, flipped_rows(other_out, reference))
    assert 0.2 < flipped.mean() < 0.8


def test_flip_probability_is_checked():
    with pytest.raises(ValueError, match='flip_prob'):
        RandomHorizontalFlip(1.5)


def test_flip_needs_numpy_images(small_images_file):
    with pytest.raises(ValueError, match=r"RandomHorizontalFlip works on numpy image batches"):
        run_images(small_images_file, [ToTensor(), RandomHorizontalFlip()])


# ------------------------------------------------------------ RandomTranslate


def shifted(image, dy, dx, fill):
    """``image`` moved by (dy, dx): pad by the shift with ``fill``, crop back (numpy reference)."""
    p = max(abs(dy), abs(dx))
    padded = np.empty((image.shape[0] + 2 * p, image.shape[1] + 2 * p, image.shape[2]), image.dtype)
    padded[...] = np.asarray(fill, image.dtype)
    padded[p:p + image.shape[0], p:p + image.shape[1]] = image
    return padded[p + dy:p + dy + image.shape[0], p + dx:p + dx + image.shape[1]]


def translations(out, originals, padding, fill):
    """The (dy, dx) of every output image, checking that it is exactly the shifted original."""
    found = []
    for k in range(out.shape[0]):
        matches = [(dy, dx) for dy in range(-padding, padding + 1) for dx in range(-padding, padding + 1)
                   if np.array_equal(out[k], shifted(originals[k], dy, dx, fill))]
        assert matches, f"image {k} is not a shift of its original by at most {padding} pixels"
        found.append(matches[0])
    return np.array(found)


@pytest.mark.parametrize('padding,fill', [(2, (0, 0, 0)), (4, (125, 123, 114))])
def test_translate_shifts_every_image_by_at_most_padding(small_images_file, originals, padding, fill):
    out = run_images(small_images_file, [RandomTranslate(padding, fill)], seed=6)
    shifts = translations(out, originals, padding, fill)
    # every shift in -padding..padding occurs, about uniformly, in both directions
    for axis in (0, 1):
        counts = np.bincount(shifts[:, axis] + padding, minlength=2 * padding + 1)
        assert counts.size == 2 * padding + 1 and counts.min() > 0.5 * N / (2 * padding + 1), counts


def test_translate_is_deterministic_per_sample(small_images_file):
    out = run_images(small_images_file, [RandomTranslate(3)], seed=7)
    order = np.random.default_rng(2).permutation(N)[:60]
    np.testing.assert_array_equal(run_images(small_images_file, [RandomTranslate(3)], indices=order, seed=7,
                                             chunk=5, workers=2), out[order])
    assert not np.array_equal(run_images(small_images_file, [RandomTranslate(3)], seed=8), out)


def test_translate_by_zero_and_beyond_the_image(small_images_file, originals):
    np.testing.assert_array_equal(run_images(small_images_file, [RandomTranslate(0)]), originals)
    # shifts larger than the 16x20 images: some images are all fill
    out = run_images(small_images_file, [RandomTranslate(40, (9, 9, 9))], seed=1)
    translations(out[:40], originals[:40], 40, (9, 9, 9))
    assert (out == 9).all(axis=(1, 2, 3)).any()


@pytest.mark.parametrize('kwargs', [dict(padding=-1), dict(padding=1.5)])
def test_translate_arguments_are_checked(kwargs):
    with pytest.raises(ValueError, match='padding'):
        RandomTranslate(**kwargs)


def test_translate_fill_must_match_the_channels(small_images_file):
    with pytest.raises(ValueError, match=r"RandomTranslate fill has 2 values, the images have 3 channels"):
        run_images(small_images_file, [RandomTranslate(2, fill=(1, 2))])


# ------------------------------------------------------------ Cutout


def cutout_boxes(out, originals, fill):
    """The filled rectangle of each image (top, left, height, width), checking that it is
    one full rectangle and that nothing else changed."""
    filled = (out == np.asarray(fill, np.uint8)).all(axis=3) & ~(originals == np.asarray(fill)).all(axis=3)
    changed = (out != originals).any(axis=3)
    boxes = []
    for k in range(out.shape[0]):
        assert not (changed[k] & ~filled[k]).any(), f"image {k}: pixels outside the cutout changed"
        ys, xs = np.nonzero(filled[k])
        assert ys.size, f"image {k} has no cutout"
        top, left, bottom, right = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
        assert filled[k, top:bottom, left:right].all(), f"image {k}: the cutout is not a rectangle"
        boxes.append((top, left, bottom - top, right - left))
    return np.array(boxes)


def check_sizes(boxes, size, height=16, width=20):
    top, left, h, w = boxes.T
    if size == 1:
        assert (h == 1).all() and (w == 1).all()
        return
    inside_y = (top > 0) & (top + h < height)
    inside_x = (left > 0) & (left + w < width)
    assert (h <= size).all() and (w <= size).all()
    assert (h[inside_y] == size).all() and (w[inside_x] == size).all()
    # squares are clipped at the borders, on every side
    assert (top == 0).any() and (top + h == height).any() and (left == 0).any() and (left + w == width).any()
    assert (h[~inside_y] < size).any() and (w[~inside_x] < size).any()


def test_cutout_default_size_is_half_the_shorter_side(small_images_file, originals):
    out = run_images(small_images_file, [Cutout()], seed=1)
    check_sizes(cutout_boxes(out, originals, (0, 0, 0)), size=8)


@pytest.mark.parametrize('size,fill', [(5, (10, 200, 255)), (1, (0, 0, 0)), (30, (7, 7, 7))])
def test_cutout_size_and_fill(small_images_file, originals, size, fill):
    out = run_images(small_images_file, [Cutout(size, fill)], seed=2)
    boxes = cutout_boxes(out, originals, fill)
    if size >= 2 * 20:
        assert (boxes == [0, 0, 16, 20]).all()
    elif size == 30:
        assert (boxes[:, 2:] <= [16, 20]).all() and ((boxes[:, 2] == 16) | (boxes[:, 3] == 20)).any()
    else:
        check_sizes(boxes, size)


def test_cutout_is_deterministic_per_sample(small_images_file):
    out = run_images(small_images_file, [Cutout(6)], seed=4)
    order = np.random.default_rng(1).permutation(N)[:50]
    np.testing.assert_array_equal(run_images(small_images_file, [Cutout(6)], indices=order, seed=4,
                                             chunk=3, workers=2), out[order])
    assert not np.array_equal(run_images(small_images_file, [Cutout(6)], seed=5), out)


@pytest.mark.parametrize('kwargs', [dict(crop_size=0), dict(crop_size=2.5), dict(crop_size=-3)])
def test_cutout_arguments_are_checked(kwargs):
    with pytest.raises(ValueError, match='crop_size'):
        Cutout(**kwargs)


def test_cutout_fill_must_match_the_channels(small_images_file):
    with pytest.raises(ValueError, match=r"Cutout fill has 2 values, the images have 3 channels"):
        run_images(small_images_file, [Cutout(4, fill=(1, 2))])


def test_cutout_of_grayscale_images(channels_file):
    from ffcv_ops import CenterCropRGBImageDecoder
    indices = np.arange(24)
    decoded = run_pipeline(channels_file, 'gray_raw', [CenterCropRGBImageDecoder((12, 12))], indices)
    out = run_pipeline(channels_file, 'gray_raw', [CenterCropRGBImageDecoder((12, 12)), Cutout(fill=(9,))],
                       indices)
    assert out.shape == (24, 12, 12, 1)
    assert ((out == 9) | (out == decoded)).all() and (out == 9).sum() > (decoded == 9).sum()
    # the default fill is black whatever the number of channels
    out = run_pipeline(channels_file, 'gray_raw', [CenterCropRGBImageDecoder((12, 12)), Cutout()], indices)
    assert ((out == 0) | (out == decoded)).all() and (out == 0).sum() > (decoded == 0).sum()


# ------------------------------------------------------------ NormalizeImage


@pytest.mark.parametrize('dtype,tolerance', [(np.float32, 1e-5), (np.float16, 2e-3), (np.float64, 1e-6)])
def test_normalize_numpy(small_images_file, originals, dtype, tolerance):
    out = run_images(small_images_file, [NormalizeImage(MEAN, STD, dtype)], chunk=9)
    assert out.dtype == dtype and out.shape == originals.shape
    expected = (originals.astype(np.float64) - MEAN) / STD
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize('channels_last', [True, False])
@pytest.mark.parametrize('dtype', [np.float32, np.float16])
def test_normalize_torch_on_cpu(small_images_file, originals, channels_last, dtype):
    ops = [ToTensor(), ToTorchImage(channels_last), NormalizeImage(MEAN, STD, dtype)]
    out = run_images(small_images_file, ops)
    assert isinstance(out, torch.Tensor) and out.shape == (N, 3, 16, 20)
    assert out.dtype == torch.from_numpy(np.zeros(0, dtype)).dtype
    expected = ((originals.astype(np.float64) - MEAN) / STD).transpose(0, 3, 1, 2)
    tolerance = 1e-5 if dtype == np.float32 else 2e-3
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=tolerance, atol=tolerance)


def test_normalize_checks_the_channels(small_images_file):
    with pytest.raises(ValueError, match=r"NormalizeImage has 2 means, the images have 3 channels"):
        run_images(small_images_file, [NormalizeImage([1, 2], [1, 1])])
    with pytest.raises(ValueError, match='floating point'):
        NormalizeImage(MEAN, STD, np.int16)


@pytest.mark.parametrize('mean,std,message', [
    (MEAN, [1, 0, 1], r"std has a zero \(std\[1\] = 0\.0\)"),
    (MEAN, [58.0, 57.0, -57.0], r"std has a negative value \(std\[2\] = -57\.0\): it would flip the sign"),
    (MEAN, [np.nan, 57.0, 57.0], r"std has a value that is not finite \(std\[0\] = nan\)"),
    (MEAN, [58.0, np.inf, -np.inf],
     r"std has a value that is not finite \(std\[1\] = inf, std\[2\] = -inf\)"),
    ([124.0, np.nan, 104.0], STD, r"mean has a value that is not finite \(mean\[1\] = nan\)"),
    ([124.0, 116.0, -np.inf], STD, r"mean has a value that is not finite \(mean\[2\] = -inf\)"),
    # both wrong: the mean is named first, then (once fixed) the std
    ([np.nan, 116.0, 104.0], [0, 57.0, 57.0], r"mean has a value that is not finite \(mean\[0\] = nan\)"),
])
def test_normalize_refuses_values_that_ruin_every_batch(mean, std, message):
    with pytest.raises(ValueError, match=message):
        NormalizeImage(mean, std, np.float32)


def test_normalize_accepts_finite_positive_values_including_tiny_ones(small_images_file, originals):
    # the checks refuse only what is wrong: a tiny positive std and a negative mean are fine
    mean, std = np.array([-1.0, 0.0, 255.0]), np.array([1e-3, 1.0, 255.0])
    out = run_images(small_images_file, [NormalizeImage(mean, std, np.float64)], indices=np.arange(8))
    np.testing.assert_allclose(out, (originals[:8].astype(np.float64) - mean) / std, rtol=1e-6, atol=1e-6)
    assert np.isfinite(out).all()


# ------------------------------------------------------------ the torch bridge


def pipeline_with_buffers(reader, ops, field='image'):
    decoder = SimpleRGBImageDecoder() if field == 'image' else IntDecoder()
    pipeline = make_pipeline(reader, field, [decoder, *ops])
    pipeline.declare()
    pipeline.generate()
    return pipeline, pipeline.allocate(64)


def test_to_tensor_shares_the_decoded_memory(small_images_file, originals):
    pipeline, buffers = pipeline_with_buffers(small_images_file, [ToTensor()])
    indices = np.arange(64)
    out = run_batch(pipeline, storage_state_of(small_images_file), indices, buffers=buffers)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and out.shape == (64, 16, 20, 3)
    assert out.data_ptr() == buffers[0].ctypes.data
    np.testing.assert_array_equal(out.numpy(), originals[:64])


def test_to_tensor_of_a_partial_batch(small_images_file, originals):
    pipeline, buffers = pipeline_with_buffers(small_images_file, [ToTensor(), ToTorchImage()])
    out = run_batch(pipeline, storage_state_of(small_images_file), np.arange(10, 30), buffers=buffers)
    assert out.shape == (20, 3, 16, 20)
    np.testing.assert_array_equal(out.numpy(), originals[10:30].transpose(0, 3, 1, 2))


def test_to_torch_image_channels_last_is_a_view(small_images_file, originals):
    pipeline, buffers = pipeline_with_buffers(small_images_file, [ToTensor(), ToTorchImage()])
    out = run_batch(pipeline, storage_state_of(small_images_file), np.arange(64), buffers=buffers)
    assert out.shape == (64, 3, 16, 20) and out.dtype == torch.uint8
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert out.data_ptr() == buffers[0].ctypes.data
    hwc = torch.from_numpy(originals[:64])
    assert torch.equal(out, hwc.permute(0, 3, 1, 2))


def test_to_torch_image_contiguous_is_a_copy(small_images_file, originals):
    ops = [ToTensor(), ToTorchImage(channels_last=False)]
    pipeline, buffers = pipeline_with_buffers(small_images_file, ops)
    out = run_batch(pipeline, storage_state_of(small_images_file), np.arange(64), buffers=buffers)
    assert out.shape == (64, 3, 16, 20) and out.is_contiguous()
    assert out.data_ptr() != buffers[0].ctypes.data and out.data_ptr() == buffers[2].data_ptr()
    assert torch.equal(out, torch.from_numpy(originals[:64]).permute(0, 3, 1, 2))


def test_to_torch_image_needs_to_tensor_first(small_images_file):
    with pytest.raises(ValueError, match=r"ToTorchImage.*needs a torch tensor: put ToTensor\(\) before it"):
        run_images(small_images_file, [ToTorchImage()])


def labels(reader, ops, indices):
    return run_pipeline(reader, 'label', [IntDecoder(), *ops], indices)


def test_convert_numpy_and_torch(small_images_file):
    indices = np.arange(5, 45)
    out = labels(small_images_file, [Convert(np.float32)], indices)
    assert out.dtype == np.float32 and out.shape == (40, 1)
    np.testing.assert_array_equal(out[:, 0], indices.astype(np.float32))
    out = labels(small_images_file, [ToTensor(), Convert(torch.float16)], indices)
    assert out.dtype == torch.float16 and torch.equal(out[:, 0], torch.arange(5, 45, dtype=torch.float16))
    out = labels(small_images_file, [ToTensor(), Convert(np.int32)], indices)   # numpy dtype on a tensor
    assert out.dtype == torch.int32


def test_view_reinterprets_without_copy(small_images_file):
    indices = np.arange(16)
    out = labels(small_images_file, [View(np.float64)], indices)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.view(np.int64)[:, 0], indices)
    out = labels(small_images_file, [ToTensor(), View(torch.float64)], indices)
    assert out.dtype == torch.float64
    assert torch.equal(out.view(torch.int64)[:, 0], torch.arange(16))
    with pytest.raises(ValueError, match=r"View cannot reinterpret int64 as int32"):
        labels(small_images_file, [View(np.int32)], indices)
    with pytest.raises(ValueError, match=r"View cannot reinterpret torch.int64 as torch.int32"):
        labels(small_images_file, [ToTensor(), View(torch.int32)], indices)


def test_squeeze_keeps_the_batch_dimension(small_images_file):
    for n in (1, 7):
        out = labels(small_images_file, [ToTensor(), Squeeze()], np.arange(n))
        assert out.shape == (n,) and out.tolist() == list(range(n))
        out = labels(small_images_file, [Squeeze(1)], np.arange(n))
        assert isinstance(out, np.ndarray) and out.shape == (n,)
    with pytest.raises(ValueError, match=r"batch dimension"):
        Squeeze(0)
    with pytest.raises(ValueError, match=r"Squeeze\(2\)"):
        labels(small_images_file, [Squeeze(2)], np.arange(3))


def test_to_device_cpu(small_images_file, originals):
    out = run_images(small_images_file, [ToTensor(), ToTorchImage(), ToDevice('cpu')], indices=np.arange(32))
    assert out.device.type == 'cpu'
    assert torch.equal(out, torch.from_numpy(originals[:32]).permute(0, 3, 1, 2))
    assert repr(ToDevice('cpu', non_blocking=False)) == "ToDevice('cpu', non_blocking=False)"


def test_to_device_needs_a_tensor(small_images_file):
    with pytest.raises(ValueError, match=r"ToDevice needs a torch tensor"):
        run_images(small_images_file, [ToDevice('cpu')])


def test_imagenet_style_pipeline(jpeg_file):
    """The README's pipeline end to end: crop, flip, tensor, NCHW, normalise."""
    from ffcv_ops import RandomResizedCropRGBImageDecoder
    indices = np.random.default_rng(0).permutation(40)
    crops = run_pipeline(jpeg_file, 'image', [RandomResizedCropRGBImageDecoder((16, 16))], indices, seed=9)
    ops = [RandomResizedCropRGBImageDecoder((16, 16)), RandomHorizontalFlip(1.0), ToTensor(),
           ToTorchImage(), NormalizeImage(MEAN, STD, np.float32)]
    out = run_pipeline(jpeg_file, 'image', ops, indices, seed=9)
    assert out.shape == (40, 3, 16, 16) and out.dtype == torch.float32
    expected = ((crops[:, :, ::-1].astype(np.float64) - MEAN) / STD).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------ ToDevice without the device


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize('device', ['cuda', 'cuda:0', torch.device('cuda', 1)])
def test_to_device_cuda_without_cuda_names_the_op_and_cuda(small_images_file, device):
    ops = [SimpleRGBImageDecoder(), ToTensor(), ToTorchImage(), ToDevice(device)]
    with pytest.raises(DeviceUnavailableError) as caught:
        run_pipeline(small_images_file, 'image', ops, np.arange(4))
    message = str(caught.value)
    assert "ToDevice('cuda" in message and 'CUDA is not available' in message
    assert "ToDevice('cpu')" in message  # what to do instead


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_device_past_the_last_gpu_names_the_count(small_images_file):
    index = torch.cuda.device_count()
    ops = [SimpleRGBImageDecoder(), ToTensor(), ToDevice(f'cuda:{index}')]
    with pytest.raises(DeviceUnavailableError, match=f"no CUDA device {index}; this machine has {index}"):
        run_pipeline(small_images_file, 'image', ops, np.arange(4))


def test_to_device_cpu_is_accepted_everywhere(small_images_file, originals):
    out = run_pipeline(small_images_file, 'image', [SimpleRGBImageDecoder(), ToTensor(), ToDevice('cpu')],
                       np.arange(8))
    np.testing.assert_array_equal(out.numpy(), originals[:8])


@pytest.mark.parametrize('source, target', [(np.float64, np.int16), (np.int64, np.float16), (np.uint8, np.float32)])
def test_convert_writes_the_values_of_astype_into_its_buffer(source, target):
    from ffcv_ops import State
    rng = np.random.default_rng(2)
    batch = (rng.normal(0, 300, (6, 5)) if np.dtype(source).kind == 'f' else rng.integers(0, 200, (6, 5))).astype(source)
    op = Convert(target)
    state, allocation = op.declare_state_and_memory(State(jit_mode=True, shape=(5,), dtype=np.dtype(source)))
    assert state.dtype == np.dtype(target) and allocation.shape == (5,) and allocation.dtype == np.dtype(target)
    buffer = np.zeros((8, 5), np.dtype(target))
    out = op.generate_code()(batch, buffer, None)
    assert out.base is buffer or np.shares_memory(out, buffer)
    np.testing.assert_array_equal(out, batch.astype(target))
    # the torch side: tensor.to(dtype)'s values, in a torch buffer
    tensor_state, tensor_allocation = op.declare_state_and_memory(
        State(jit_mode=False, shape=(5,), dtype=torch.float64, device=torch.device('cpu')))
    tensors = torch.zeros((8, 5), dtype=tensor_state.dtype)
    got = op.generate_code()(torch.from_numpy(batch.astype(np.float64)), tensors, None)
    assert got.data_ptr() == tensors.data_ptr()
    assert torch.equal(got, torch.from_numpy(batch.astype(np.float64)).to(tensor_state.dtype))
