"""ChannelShuffle against the conformance kit of ffcv_ops, and against a numpy reference."""
import numpy as np
import pytest
from ffcv_format import RGBImageField
from ffcv_format.testing import write_dataset
from ffcv_ops import SimpleRGBImageDecoder
from ffcv_ops.kernels.random import sample_key_py, uniform_py
from ffcv_ops.testing import OperationTests, make_pipeline, run_pipeline
from ffcv_ops_example import ChannelShuffle


class TestChannelShuffle(OperationTests):
    random = True

    def make_operation(self):
        return ChannelShuffle(p=0.7)


class TestChannelShuffleAlways(OperationTests):
    random = True

    def make_operation(self):
        return ChannelShuffle(p=1.0)


def reference(images, indices, seed, p):
    """What ChannelShuffle documents, in numpy: draw 0 of the sample's key below ``p``
    shuffles; draws 1.. are a Fisher-Yates shuffle of the channel order."""
    out = images.copy()
    for row, index in enumerate(indices):
        key = sample_key_py(seed, int(index))
        if uniform_py(key, 0) >= p:
            continue
        order = list(range(images.shape[3]))
        for j in range(len(order) - 1, 0, -1):
            k = int(uniform_py(key, j) * (j + 1))
            order[j], order[k] = order[k], order[j]
        out[row] = images[row][:, :, order]
    return out


@pytest.fixture(scope='module')
def images_file(tmp_path_factory):
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (60, 9, 7, 3), dtype=np.uint8)
    reader = write_dataset(tmp_path_factory.mktemp('shuffle') / 'images.beton',
                           {'image': RGBImageField(write_mode='raw')}, [(image,) for image in images])
    return reader, images


@pytest.mark.parametrize('p', [0.0, 0.4, 1.0])
def test_matches_the_numpy_reference(images_file, p):
    reader, images = images_file
    indices = np.random.default_rng(2).permutation(len(images))[:50]
    pipeline = [SimpleRGBImageDecoder(), ChannelShuffle(p)]
    out = run_pipeline(reader, 'image', pipeline, indices, seed=11, epoch=3).copy()
    seed = int(make_pipeline(reader, 'image', pipeline).op_seeds(11, 3, 0)[1])   # the operation's seed
    np.testing.assert_array_equal(out, reference(images[indices], indices, seed, p))
    changed = np.mean([not np.array_equal(a, b) for a, b in zip(out, images[indices])])
    if p == 0.0:
        assert changed == 0
    elif p == 1.0:
        assert changed > 0.7      # the identity order comes up in 1 of 6 shuffles
    else:
        assert 0.1 < changed < 0.6
    # a shuffle moves channels, never changes their values
    np.testing.assert_array_equal(np.sort(out, axis=3), np.sort(images[indices], axis=3))


def test_epochs_draw_differently(images_file):
    reader, images = images_file
    indices = np.arange(len(images))
    first = run_pipeline(reader, 'image', [SimpleRGBImageDecoder(), ChannelShuffle(1.0)], indices, epoch=0).copy()
    second = run_pipeline(reader, 'image', [SimpleRGBImageDecoder(), ChannelShuffle(1.0)], indices, epoch=1)
    assert not np.array_equal(first, second)


def test_bad_arguments_and_inputs_are_named():
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        ChannelShuffle(1.5)
    from ffcv_ops import State
    with pytest.raises(ValueError, match="ChannelShuffle works on numpy image batches"):
        ChannelShuffle().declare_state_and_memory(State(jit_mode=True, shape=(1,), dtype=np.dtype('int64')))
