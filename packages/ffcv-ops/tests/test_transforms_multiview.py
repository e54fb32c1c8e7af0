"""Multi-view outputs for self-supervised learning: one pipeline per view on one field."""
import numpy as np
import pytest

from ffcv_ops import IntDecoder, RandomHorizontalFlip, RandomResizedCropRGBImageDecoder, ToTensor
from ffcv_ops.pipeline import PipelineSpec
from ffcv_ops.testing import make_pipeline, run_batch, storage_state_of
from ffcv_ops.transforms.blur import GaussianBlur
from ffcv_ops.transforms.pixel import Solarization

SIDE = 24


def ssl_view(k):
    """BYOL-like views: view 0 always blurred, view 1 sometimes solarized."""
    return [RandomResizedCropRGBImageDecoder((SIDE, SIDE), scale=(0.2, 1.0)), RandomHorizontalFlip(),
            GaussianBlur(3, (0.1, 2.0), p=1.0 if k == 0 else 0.1), Solarization(0.0 if k == 0 else 0.2)]


def run_spec(reader, spec, indices, pipeline_index, seed=0):
    """One output of a loader given ``spec``, as the loader runs output number ``pipeline_index``."""
    ops = ([spec.decoder] if spec.decoder is not None else []) + list(spec.transforms)
    pipeline = make_pipeline(reader, spec.source, ops)
    pipeline.declare()
    pipeline.generate()
    return run_batch(pipeline, storage_state_of(reader), indices, seed=seed, pipeline_index=pipeline_index)


def test_views_are_pipelines_on_one_field_with_fresh_operations():
    from ffcv_ops.transforms.multiview import multi_view_pipelines
    specs = multi_view_pipelines('image', ssl_view, views=3)
    assert list(specs) == ['image', 'image_view1', 'image_view2']
    assert all(isinstance(s, PipelineSpec) and s.source == 'image' for s in specs.values())
    assert all(isinstance(s.decoder, RandomResizedCropRGBImageDecoder) for s in specs.values())
    operations = [id(op) for s in specs.values() for op in [s.decoder, *s.transforms]]
    assert len(set(operations)) == len(operations), "an operation is shared between views"
    assert [s.transforms[1].p for s in specs.values()] == [1.0, 0.1, 0.1]
    named = multi_view_pipelines('image', ssl_view, views=2, names=['global', 'local'])
    assert list(named) == ['global', 'local']


def test_views_differ_and_each_is_deterministic(jpeg_file):
    from ffcv_ops.transforms.multiview import multi_view_pipelines
    specs = list(multi_view_pipelines('image', ssl_view, views=2).values())
    indices = np.arange(40)
    first = run_spec(jpeg_file, specs[0], indices, pipeline_index=0, seed=3)
    second = run_spec(jpeg_file, specs[1], indices, pipeline_index=2, seed=3)
    assert first.shape == second.shape == (40, SIDE, SIDE, 3)
    differ = (first != second).any(axis=(1, 2, 3))
    assert differ.all(), "two views of a sample came out the same"
    again = list(multi_view_pipelines('image', ssl_view, views=2).values())
    np.testing.assert_array_equal(run_spec(jpeg_file, again[1], indices, pipeline_index=2, seed=3), second)
    assert not np.array_equal(run_spec(jpeg_file, again[1], indices, pipeline_index=2, seed=4), second)


def test_a_view_without_a_decoder_gets_the_default_one():
    from ffcv_ops.transforms.multiview import multi_view_pipelines
    specs = multi_view_pipelines('label', lambda k: [ToTensor()], views=2)
    assert all(s.decoder is None and len(s.transforms) == 1 for s in specs.values())
    with_decoder = multi_view_pipelines('label', lambda k: IntDecoder(), views=2)
    assert all(isinstance(s.decoder, IntDecoder) and s.transforms == [] for s in with_decoder.values())


@pytest.mark.parametrize('kwargs,message', [
    (dict(source=3), 'source must be a field name'),
    (dict(make_view=[]), 'make_view must be a function'),
    (dict(views=0), 'views must be a positive integer'),
    (dict(views=2, names=['a', 'a']), 'names must be 2 different non-empty strings'),
    (dict(views=2, names=['a']), 'names must be 2 different non-empty strings'),
    (dict(make_view=lambda k: [3]), r'make_view\(0\) must return a list of operations'),
])
def test_arguments_are_checked(kwargs, message):
    from ffcv_ops.transforms.multiview import multi_view_pipelines
    arguments = dict(source='image', make_view=ssl_view)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=f"multi_view_pipelines {message}"):
        multi_view_pipelines(**arguments)


def test_operations_shared_between_views_are_refused():
    from ffcv_ops.transforms.multiview import multi_view_pipelines
    flip = RandomHorizontalFlip()
    with pytest.raises(ValueError, match=r"make_view\(1\) returned operations already used by an earlier view"):
        multi_view_pipelines('image', lambda k: [RandomResizedCropRGBImageDecoder((8, 8)), flip], views=2)


def test_the_loader_returns_every_view(jpeg_file):
    """The loader (when installed alongside) maps the specs to outputs after the fields."""
    loader_module = pytest.importorskip('ffcv_loader')
    from ffcv_ops.transforms.multiview import multi_view_pipelines
    pipelines = {'label': [IntDecoder()], **multi_view_pipelines('image', ssl_view, views=2)}
    loader = loader_module.Loader(jpeg_file.file_name, batch_size=20, num_workers=2, pipelines=pipelines, seed=1)
    batches = list(loader)
    assert len(batches) == 2
    image, label, image_view1 = batches[0]
    assert np.asarray(image).shape == np.asarray(image_view1).shape == (20, SIDE, SIDE, 3)
    assert (np.asarray(image) != np.asarray(image_view1)).any(axis=(1, 2, 3)).all()
