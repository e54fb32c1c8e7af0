"""Pipelines given as data: items resolved by name, arguments converted and checked, errors
that name the position and what would be accepted; JSON and YAML, never evaluated."""
import json

import numpy as np
import pytest
import torch
from ffcv_ops import (
    CenterCropRGBImageDecoder,
    Convert,
    IntDecoder,
    NormalizeImage,
    RandomHorizontalFlip,
    RandomResizedCropRGBImageDecoder,
    Squeeze,
    ToTensor,
)
from ffcv_ops.pipeline_data import (
    PipelineDataError,
    describe_item,
    load_pipelines,
    pipeline_from_data,
    pipelines_from_data,
    read_data,
)
from ffcv_ops.testing import run_pipeline

IMAGE = [{"op": "RandomResizedCropRGBImageDecoder", "output_size": [112, 112], "scale": [0.35, 1]},
         "RandomHorizontalFlip", {"op": "NormalizeImage", "mean": [120, 110, 100], "std": [60, 55, 50],
                                  "type": "float16"}]


def test_items_by_name_with_arguments():
    decoder, flip, normalize = pipeline_from_data(IMAGE, 'image')
    assert type(decoder) is RandomResizedCropRGBImageDecoder and decoder.output_size == (112, 112)
    assert decoder.scale == (0.35, 1)                          # lists become tuples
    assert type(flip) is RandomHorizontalFlip and flip.flip_prob == 0.5
    assert type(normalize) is NormalizeImage and repr(normalize).endswith('type=float16)')
    assert pipeline_from_data([]) == []


def test_dtype_names_and_variadic_arguments():
    convert, to_torch, squeeze = pipeline_from_data([{"op": "Convert", "target_dtype": "float16"},
                                                     {"op": "Convert", "target_dtype": "torch.bfloat16"},
                                                     {"op": "Squeeze", "dims": [1]}])
    assert convert.target_dtype == np.dtype('float16') and isinstance(convert, Convert)
    assert to_torch.target_dtype is torch.bfloat16
    assert isinstance(squeeze, Squeeze) and repr(squeeze) == repr(Squeeze(1))


def test_the_same_output_as_operations_built_in_python(jpeg_file):
    indices = np.arange(20)
    given = run_pipeline(jpeg_file, 'image', pipeline_from_data(IMAGE, 'image'), indices, seed=3).copy()
    built = run_pipeline(jpeg_file, 'image', [RandomResizedCropRGBImageDecoder((112, 112), (0.35, 1)),
                                              RandomHorizontalFlip(),
                                              NormalizeImage([120, 110, 100], [60, 55, 50], np.float16)],
                         indices, seed=3)
    assert given.dtype == np.float16
    np.testing.assert_array_equal(given, built)


@pytest.mark.parametrize('spec, message', [
    (["IntDecoder", "RandomFlip"], (r"pipeline 'image', item 2: unknown operation 'RandomFlip': "
                                    r"did you mean .*RandomHorizontalFlip")),
    ([{"op": "RandomHorizontalFlip", "p": 0.3}], (r"pipeline 'image', item 1: RandomHorizontalFlip: "
                                                   r"got an unexpected keyword argument 'p' "
                                                   r"\(RandomHorizontalFlip takes: flip_prob=0.5\)")),
    ([{"op": "RandomHorizontalFlip", "flip_prob": 3}], (r"item 1: RandomHorizontalFlip\(flip_prob=3\) fails: "
                                                         r"flip_prob must be in \[0, 1\], got 3")),
    (["SimpleRGBImageDecoder", {"op": "CenterCropRGBImageDecoder"}],
     (r"item 2: CenterCropRGBImageDecoder: missing a required argument: 'output_size' "
      r"\(CenterCropRGBImageDecoder takes: output_size \(required\), ratio=0.875, scaled_decoding=True\)")),
    ([{"output_size": [3, 3]}], r"item 1: \{'output_size': \[3, 3\]\} has no 'op' key"),
    ([7], r"item 1: 7 \(int\) is not an operation"),
    ([{"op": "Convert", "target_dtype": "float99"}], r"target_dtype='float99' is not a numpy dtype name"),
    ([{"op": "Convert", "target_dtype": "torch.tensor"}], r"target_dtype='torch.tensor' is not a torch dtype"),
    ("IntDecoder", r"pipeline 'image': a pipeline is a list of operations, got str"),
])
def test_errors_name_the_position_and_what_is_accepted(spec, message):
    with pytest.raises(PipelineDataError, match=message):
        pipeline_from_data(spec, 'image')


def test_a_mapping_of_fields():
    pipelines = pipelines_from_data({"image": [{"op": "CenterCropRGBImageDecoder", "output_size": [8, 8]}],
                                     "label": ["IntDecoder", "ToTensor"], "extra": None})
    assert isinstance(pipelines['image'][0], CenterCropRGBImageDecoder)
    assert [type(op) for op in pipelines['label']] == [IntDecoder, ToTensor] and pipelines['extra'] is None
    with pytest.raises(PipelineDataError, match="pipeline 'label', item 1: unknown operation 'IntDecodr'"):
        pipelines_from_data({"label": ["IntDecodr"]})
    with pytest.raises(PipelineDataError, match="a mapping of field name -> list of operations, got list"):
        pipelines_from_data([["IntDecoder"]])


def test_json_files_and_text(tmp_path):
    data = {"label": ["IntDecoder", {"op": "ToTensor"}], "image": None}
    as_json = tmp_path / 'pipelines.json'
    as_json.write_text(json.dumps(data))
    for source in (as_json, str(as_json), json.dumps(data)):
        pipelines = load_pipelines(source)
        assert [type(op) for op in pipelines['label']] == [IntDecoder, ToTensor] and pipelines['image'] is None
    assert read_data('[1, 2]') == [1, 2]


def test_yaml_files_and_text(tmp_path):
    pytest.importorskip('yaml', reason='YAML is read when pyyaml is installed (an optional dependency)')
    as_yaml = tmp_path / 'pipelines.yaml'
    as_yaml.write_text("label:\n  - IntDecoder\n  - op: ToTensor\nimage: null\n")
    for source in (as_yaml, str(as_yaml), "{label: [IntDecoder, ToTensor], image: ~}"):
        pipelines = load_pipelines(source)
        assert [type(op) for op in pipelines['label']] == [IntDecoder, ToTensor] and pipelines['image'] is None
    with pytest.raises(PipelineDataError, match="'missing.yaml': no such file, and not pipelines"):
        load_pipelines('missing.yaml')
    with pytest.raises(PipelineDataError, match="neither JSON nor YAML"):
        load_pipelines('{"label": [')


def test_without_pyyaml_the_error_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__('sys').modules, 'yaml', None)     # import yaml fails
    assert load_pipelines('{"label": ["IntDecoder"]}')['label'][0].__class__ is IntDecoder
    with pytest.raises(PipelineDataError, match="not JSON .*YAML needs pyyaml, which is not installed"):
        load_pipelines('label: [IntDecoder]')
    path = tmp_path / 'p.yml'
    path.write_text('label: [IntDecoder]\n')
    with pytest.raises(PipelineDataError, match="YAML needs pyyaml"):
        load_pipelines(path)


def test_nothing_is_evaluated(tmp_path):
    marker = tmp_path / 'evaluated'
    with pytest.raises(PipelineDataError, match="unknown operation"):
        pipeline_from_data([f"open({str(marker)!r}, 'w')"])
    with pytest.raises(PipelineDataError):
        load_pipelines(f"label: !!python/object/apply:open [{str(marker)!r}, 'w']")    # yaml.safe_load
    assert not marker.exists()


def test_describe_item():
    assert describe_item("ToTensor") == 'ToTensor'
    assert describe_item({"op": "CenterCropRGBImageDecoder", "output_size": [8, 8]}) == \
        'CenterCropRGBImageDecoder(output_size=(8, 8))'
