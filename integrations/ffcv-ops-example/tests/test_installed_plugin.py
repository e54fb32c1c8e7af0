"""The plugin as users get it: installed (editable, by the test environment: hatch.toml's
``ops-example`` entry), found through its ``ffcv.ops`` entry point, and named in pipelines
given as data, in a real Loader and in ``ffcv doctor --pipeline``.

Skipped where ``ffcv-ops-example`` is not installed (``pip install -e
integrations/ffcv-ops-example`` installs it).
"""
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

try:
    DISTRIBUTION = importlib.metadata.distribution('ffcv-ops-example')
except importlib.metadata.PackageNotFoundError:
    if os.environ.get('FFCV_REQUIRE_OPS_EXAMPLE'):  # set in hatch's ops-example environment
        raise RuntimeError("ffcv-ops-example should be installed in this environment, and is not")
    pytest.skip('ffcv-ops-example is not installed here (pip install -e integrations/ffcv-ops-example; '
                "hatch's ops-example environment installs it)", allow_module_level=True)

from ffcv_format import IntField, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset
from ffcv_loader import Loader, OrderOption
from ffcv_ops import available_ops, load_pipelines, pipeline_from_data, resolve_op
from ffcv_ops_example import ChannelShuffle

PLUGIN = Path(__file__).resolve().parents[1]
FFCV = os.path.join(os.path.dirname(sys.executable), 'ffcv')


@pytest.fixture(scope='module')
def jpegs(tmp_path_factory):
    """40 JPEG photos of 32x40 with a label."""
    rng = np.random.default_rng(9)
    path = tmp_path_factory.mktemp('plugin') / 'photos.beton'
    write_dataset(path, {'image': RGBImageField(write_mode='jpg', jpeg_quality=95), 'label': IntField()},
                  [(photo_like_image(rng, 32, 40), k) for k in range(40)])
    return path


def test_installed_editable_from_this_tree():
    direct_url = json.loads(DISTRIBUTION.read_text('direct_url.json') or '{}')
    assert direct_url.get('dir_info', {}).get('editable'), direct_url
    assert Path(direct_url['url'].removeprefix('file://')).resolve() == PLUGIN
    points = [p for p in DISTRIBUTION.entry_points if p.group == 'ffcv.ops']
    assert [(p.name, p.value) for p in points] == [('ChannelShuffle', 'ffcv_ops_example.channel_shuffle:ChannelShuffle')]


def test_resolved_by_name_next_to_the_builtins():
    ops = available_ops()
    assert ops['ChannelShuffle'] == 'ffcv_ops_example.channel_shuffle:ChannelShuffle'
    names = list(ops)
    assert names.index('RandomHorizontalFlip') < names.index('ChannelShuffle')   # built-ins first
    assert resolve_op('ChannelShuffle') is ChannelShuffle


def test_in_a_loader_from_a_pipeline_given_as_data(jpegs):
    def loader(spec):
        return Loader(jpegs, batch_size=16, num_workers=2, order=OrderOption.SEQUENTIAL, seed=5, drop_last=False,
                      pipelines={'image': pipeline_from_data(spec, 'image'), 'label': None})

    decoder = {"op": "CenterCropRGBImageDecoder", "output_size": [24, 24], "ratio": 1.0}
    shuffled = [batch[0].copy() for batch in loader([decoder, {"op": "ChannelShuffle", "p": 1.0}])]
    plain = [batch[0].copy() for batch in loader([decoder])]
    assert [b.shape for b in shuffled] == [(16, 24, 24, 3), (16, 24, 24, 3), (8, 24, 24, 3)]
    changed = sum(not np.array_equal(a, b) for s, p in zip(shuffled, plain) for a, b in zip(s, p))
    assert changed > 30                       # 1 in 6 shuffles is the identity
    for s, p in zip(shuffled, plain):         # channels moved, values kept
        np.testing.assert_array_equal(np.sort(s, axis=3), np.sort(p, axis=3))
    again = [batch[0].copy() for batch in loader([decoder, {"op": "ChannelShuffle", "p": 1.0}])]
    for a, b in zip(shuffled, again):         # the same seed, the same shuffles
        np.testing.assert_array_equal(a, b)


def test_from_a_yaml_file(jpegs, tmp_path):
    spec = tmp_path / 'pipelines.yaml'
    spec.write_text('image:\n  - SimpleRGBImageDecoder\n  - op: ChannelShuffle\n    p: 0.25\nlabel: [IntDecoder]\n')
    pipelines = load_pipelines(spec)
    assert repr(pipelines['image'][1]) == 'ChannelShuffle(p=0.25)'
    batch = next(iter(Loader(jpegs, batch_size=8, num_workers=1, pipelines=pipelines)))
    assert batch[0].shape == (8, 32, 40, 3) and batch[1].shape == (8, 1)


def test_through_ffcv_doctor(jpegs):
    pipeline = ('image=[{"op": "RandomResizedCropRGBImageDecoder", "output_size": [24, 24]}, '
                '{"op": "ChannelShuffle", "p": 0.5}, "ToTensor", "ToTorchImage"]')
    result = subprocess.run([FFCV, 'doctor', str(jpegs), '--workers', '1', '--batches', '2', '--batch-size', '16',
                             '--pipeline', pipeline, '--pipeline', 'label=IntDecoder,ToTensor', '--json', '-q'],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report['pipelines']['image'] == ("RandomResizedCropRGBImageDecoder(output_size=(24, 24)), "
                                            "ChannelShuffle(p=0.5), ToTensor, ToTorchImage")
    assert report['measurements']['decode']['one']['samples_s'] > 0
    # a misspelt plugin name is one line naming the close match
    wrong = subprocess.run([FFCV, 'doctor', str(jpegs), '--pipeline', 'image=SimpleRGBImageDecoder,ChanelShuffle'],
                           capture_output=True, text=True, timeout=300, check=False)
    assert wrong.returncode == 1 and 'Traceback' not in wrong.stderr
    assert "pipeline 'image', item 2: unknown operation 'ChanelShuffle': did you mean ChannelShuffle" in wrong.stderr
