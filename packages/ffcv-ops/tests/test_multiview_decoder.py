"""Several random resized crops of each image from one decode (MultiViewRandomResizedCropRGBImageDecoder)."""
import cv2
import numpy as np
import pytest

from ffcv_ops import RandomResizedCropRGBImageDecoder, ToTensor
from ffcv_ops.decoders.multiview import MultiViewRandomResizedCropRGBImageDecoder
from ffcv_ops.kernels.crop import random_resized_crop_box
from ffcv_ops.kernels.random import sample_key
from ffcv_ops.testing import make_pipeline, run_batch, run_pipeline, storage_state_of


def shuffled(n, seed):
    return np.random.default_rng(seed).permutation(n)


def reference_views(reader, i, seed, views, output_size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                    field='image'):
    """View v: the random resized crop keyed by ``i * views + v`` of the stored image, in numpy/cv2."""
    image = reader.read_field(i, field)
    h, w = image.shape[:2]
    out = []
    for v in range(views):
        key = np.uint64(sample_key(np.uint64(seed), np.int64(i * views + v)))
        top, left, ch, cw = random_resized_crop_box(h, w, key, scale[0], scale[1],
                                                    np.log(ratio[0]), np.log(ratio[1]))
        crop = cv2.resize(image[top:top + ch, left:left + cw], output_size[::-1],
                          interpolation=cv2.INTER_AREA)
        out.append(crop.reshape(*output_size, image.shape[2]))
    return np.stack(out)


def decoder_seed(reader, op, seed, epoch, field='image'):
    return make_pipeline(reader, field, [op]).op_seeds(seed, epoch, 0)[0]


def test_each_view_is_a_random_resized_crop_of_the_decoded_image(jpeg_file):
    indices = shuffled(40, 3)
    op = MultiViewRandomResizedCropRGBImageDecoder((20, 28), views=3, scale=(0.2, 0.9))
    out = run_pipeline(jpeg_file, 'image', [op], indices, seed=5, epoch=1)
    assert out.shape == (40, 3, 20, 28, 3) and out.dtype == np.uint8
    seed = decoder_seed(jpeg_file, op, 5, 1)
    for row, i in zip(out, indices):
        expected = reference_views(jpeg_file, int(i), seed, 3, (20, 28), scale=(0.2, 0.9))
        np.testing.assert_array_equal(row, expected)


class CountingDecoder(MultiViewRandomResizedCropRGBImageDecoder):
    """The per-image path (PNG, images the compiled kernel leaves out, no libjpeg: here forced
    by a box rule of its own), counting its decodes. The compiled path
    (``kernels.image_chunks.decode_views``) decodes each image once by construction, into one
    scratch from which every view is resized; the test below shows both paths give the same bytes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.decoded = []

    def _box_rule(self):
        from ffcv_ops.kernels.image_chunks import BOXES_GIVEN
        return BOXES_GIVEN, None

    def _decode_one(self, data, start, *rest):
        self.decoded.append(start)
        return super()._decode_one(data, start, *rest)


@pytest.mark.parametrize('views', [1, 3])
def test_the_compiled_path_gives_the_per_image_paths_bytes(jpeg_file, views):
    indices = shuffled(40, 8)
    compiled = run_pipeline(jpeg_file, 'image', [MultiViewRandomResizedCropRGBImageDecoder((24, 18), views=views)],
                            indices, seed=2, epoch=3, chunk=16)
    per_image = CountingDecoder((24, 18), views=views)
    expected = run_pipeline(jpeg_file, 'image', [per_image], indices, seed=2, epoch=3, chunk=16)
    assert len(per_image.decoded) == 40
    np.testing.assert_array_equal(compiled, expected)


def test_each_image_is_decoded_once_for_all_views(jpeg_file):
    op = CountingDecoder((16, 16), views=4)
    out = run_pipeline(jpeg_file, 'image', [op], np.arange(40), chunk=16)
    assert out.shape == (40, 4, 16, 16, 3)
    assert len(op.decoded) == 40 and len(set(op.decoded)) == 40


def test_views_differ(jpeg_file):
    out = run_pipeline(jpeg_file, 'image', [MultiViewRandomResizedCropRGBImageDecoder((24, 24), views=3)],
                       np.arange(40), seed=2)
    for a in range(3):
        for b in range(a + 1, 3):
            differ = (out[:, a] != out[:, b]).any(axis=(1, 2, 3))
            assert differ.all(), f"views {a} and {b} of a sample are equal"


def test_one_view_is_the_random_resized_crop_decoder(jpeg_file):
    indices = shuffled(40, 4)
    multi = run_pipeline(jpeg_file, 'image', [MultiViewRandomResizedCropRGBImageDecoder((20, 20), views=1)],
                         indices, seed=9)
    # the multi-view decoder decodes each image once at full size, for all its views
    single = run_pipeline(jpeg_file, 'image', [RandomResizedCropRGBImageDecoder((20, 20), scaled_decoding=False)],
                          indices, seed=9)
    assert multi.shape == (40, 1, 20, 20, 3)
    np.testing.assert_array_equal(multi[:, 0], single)


def test_deterministic_for_a_seed_and_different_across_epochs(jpeg_file):
    def views(indices, **options):
        out = run_pipeline(jpeg_file, 'image', [MultiViewRandomResizedCropRGBImageDecoder((20, 20))],
                           indices, **options)
        return {int(i): row.copy() for i, row in zip(indices, out)}

    indices = np.arange(40)
    whole = views(indices, seed=1)
    for variant in [views(indices, seed=1, chunk=7, workers=2, chunk_order=list(range(6))[::-1]),
                    views(shuffled(40, 5), seed=1)]:
        for i, row in variant.items():
            np.testing.assert_array_equal(row, whole[i], err_msg=f"sample {i}")
    other_epoch, other_seed = views(indices, seed=1, epoch=1), views(indices, seed=2)
    assert sum(not np.array_equal(other_epoch[i], whole[i]) for i in indices) > 30
    assert sum(not np.array_equal(other_seed[i], whole[i]) for i in indices) > 30


@pytest.mark.parametrize('field,channels', [('gray_jpg', 1), ('rgba_png', 4), ('rgb_png', 3)])
def test_other_channels_and_png(channels_file, field, channels):
    op = MultiViewRandomResizedCropRGBImageDecoder((9, 14), views=2)
    indices = np.arange(24)
    out = run_pipeline(channels_file, field, [op], indices, seed=4)
    assert out.shape == (24, 2, 9, 14, channels)
    seed = decoder_seed(channels_file, op, 4, 0, field)
    for row, i in zip(out, indices):
        expected = reference_views(channels_file, int(i), seed, 2, (9, 14), field=field)
        np.testing.assert_array_equal(row, expected)


def test_output_size_changes_between_epochs(jpeg_file):
    op = MultiViewRandomResizedCropRGBImageDecoder((16, 16), views=2)
    pipeline = make_pipeline(jpeg_file, 'image', [op])
    state = storage_state_of(jpeg_file)
    for epoch, size in enumerate([(16, 16), (12, 20)]):
        op.output_size = size
        assert pipeline.declare()[0].shape == (2, *size, 3)
        pipeline.generate()
        out = run_batch(pipeline, state, np.arange(8), epoch=epoch)
        assert out.shape == (8, 2, *size, 3)
        seed = pipeline.op_seeds(0, epoch, 0)[0]
        np.testing.assert_array_equal(out[5], reference_views(jpeg_file, 5, seed, 2, size))


def test_to_tensor_keeps_the_views_axis(jpeg_file):
    ops = [MultiViewRandomResizedCropRGBImageDecoder((8, 10), views=2), ToTensor()]
    out = run_pipeline(jpeg_file, 'image', ops, np.arange(6))
    assert tuple(out.shape) == (6, 2, 8, 10, 3)


@pytest.mark.parametrize('kwargs,message', [
    (dict(views=0), 'views must be a positive integer'),
    (dict(views=-2), 'views must be a positive integer'),
    (dict(views=1.5), 'views must be a positive integer'),
    (dict(views=True), 'views must be a positive integer'),
    (dict(output_size=(0, 10)), 'output_size'),
    (dict(output_size=(10,)), 'output_size'),
    (dict(output_size='ab'), 'output_size'),
    (dict(scale=(0.5, 0.1)), 'scale'),
    (dict(ratio=(0, 1)), 'ratio'),
])
def test_arguments_are_checked(kwargs, message):
    arguments = dict(output_size=(8, 8))
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        MultiViewRandomResizedCropRGBImageDecoder(**arguments)


def test_repr():
    assert repr(MultiViewRandomResizedCropRGBImageDecoder((4, 6), views=3, scale=(0.5, 1.0))) == (
        "MultiViewRandomResizedCropRGBImageDecoder(output_size=(4, 6), views=3, scale=(0.5, 1.0), "
        "ratio=(0.75, 1.3333333333333333))")
