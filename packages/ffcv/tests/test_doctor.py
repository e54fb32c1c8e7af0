"""`ffcv doctor` on the command line (the console script), its JSON report, its errors, and
pipelines read from YAML (pyyaml is installed with `ffcv`, not with the loader). What needs
only the loader (`diagnose()` on real setups, pipelines) is tested in
packages/ffcv-loader/tests/test_doctor.py; the decision rules in test_doctor_analysis.py.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from ffcv_format import IntField, Reader, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset
from ffcv_loader.doctor import diagnose, parse_pipelines

FFCV = os.path.join(os.path.dirname(sys.executable), 'ffcv')
CROP_112 = ('image=[{"op": "RandomResizedCropRGBImageDecoder", "output_size": [112, 112]}, "RandomHorizontalFlip", '
            '"ToTensor", "ToTorchImage"]')


def ffcv(*args, check=None):
    result = subprocess.run([FFCV, *map(str, args)], check=False, capture_output=True, text=True, timeout=300)
    if check is not None:
        assert result.returncode == check, (result.stdout, result.stderr)
    return result


def assert_one_line_error(result, *fragments):
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith('ffcv doctor: error: ')]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """200 JPEG images of 256x256 (photo-like texture, quality 90) and an int label."""
    path = tmp_path_factory.mktemp('doctor') / 'images.beton'
    rng = np.random.default_rng(5)
    samples = [(photo_like_image(rng, 256, 256), k % 10) for k in range(200)]
    write_dataset(path, {'image': RGBImageField(write_mode='jpg', jpeg_quality=90), 'label': IntField()},
                  samples)
    return path


def _has_number(text):
    return any(ch.isdigit() for ch in text)


def test_help_has_doctor_with_examples():
    assert '\n    doctor ' in ffcv('--help', check=0).stdout
    text = ffcv('doctor', '--help', check=0).stdout
    assert text.startswith('usage: ffcv doctor')
    assert 'examples:\n' in text and '  ffcv doctor ' in text
    for option in ('--pipeline', '--workers', '--batch-size', '--batches', '--order', '--os-cache',
                   '--no-os-cache', '--model', '--json', '--device', 'FIELD=[ITEM',
                   '--pipelines FILE'):
        assert option in text


def test_console_script_names_decode_with_one_worker_thread(images):
    result = ffcv('doctor', images, '--workers', 1, '--batches', 2, '--pipeline', CROP_112, '-q', check=0)
    out = result.stdout
    assert 'samples    200' in out and 'image (RGBImageField: jpeg 100%, median 256x256)' in out
    assert 'label = (default decoder: IntDecoder)' in out
    assert 'Bottleneck: decode + augment (1 worker thread: ' in out
    assert 'from page cache' in out
    advice = out.split('What to change:')[1].split('Notes:')[0]
    lines = [line for line in advice.splitlines() if line.startswith('  - ')]
    useful = [line for line in lines if 'max_resolution=128' in line or 'num_workers=' in line]
    assert useful and all('(expected: ' in line and _has_number(line.split('(expected: ')[1])
                          for line in useful), out
    if not torch.cuda.is_available():
        assert 'host-to-device transfer' in out and 'no CUDA device: skipped' in out


def test_json_report_has_every_number(images):
    result = ffcv('doctor', images, '--workers', 1, '--batches', 2, '--pipeline', CROP_112, '--json', '-q',
                  check=0)
    report = json.loads(result.stdout)
    assert report['bottleneck'] == 'decode' and report['bottleneck_label'] == 'decode + augment'
    storage = report['measurements']['storage']
    for key in ('cold_sequential', 'cold_random_pages', 'cold_random_samples', 'warm'):
        assert storage[key]['mb_s'] > 0 and storage[key]['samples_s'] > 0
    assert storage['bytes_per_sample'] == pytest.approx(report['file_size'] / 200)
    decode = report['measurements']['decode']
    assert decode['one']['samples_s'] > 0 and decode['one']['batches'] == 2
    assert (decode.get('all_cores') or decode['one'])['samples_s'] > 0
    assert report['measurements']['stage_rates']['decode'] < report['measurements']['stage_rates']['storage']
    assert report['recommendations'], report
    for rec in report['recommendations']:
        assert set(rec) == {'setting', 'why', 'expected_gain'} and _has_number(rec['why'])
    assert any(r['expected_gain'] and r['expected_gain'] > 1 for r in report['recommendations'])
    assert {s['key'] for s in report['stages']} >= {'storage', 'decode', 'transfer', 'model'}


def test_pipelines_as_data_from_a_yaml_file_and_names(images, tmp_path):
    handlers = Reader(images).handlers
    spec = tmp_path / 'pipelines.yaml'
    spec.write_text('image:\n  - op: CenterCropRGBImageDecoder\n    output_size: [64, 64]\n    ratio: 0.875\n'
                    '  - ToTensor\nlabel: null\n')
    choice = parse_pipelines([str(spec)], handlers)
    assert choice.origin == f'from {spec}'
    pipelines = choice.make()
    assert pipelines['label'] is None
    decoder, to_tensor = pipelines['image']
    assert type(decoder).__name__ == 'CenterCropRGBImageDecoder' and decoder.output_size == (64, 64)
    assert type(to_tensor).__name__ == 'ToTensor'
    assert choice.described == {'image': 'CenterCropRGBImageDecoder(output_size=(64, 64), ratio=0.875), ToTensor',
                                'label': 'left out'}
    # each make() builds fresh operations (a loader each)
    assert choice.make()['image'][0] is not decoder
    # a file's fields and FIELD=... options together; a field given in both is refused
    spec.write_text('{"image": ["SimpleRGBImageDecoder"]}')
    both = parse_pipelines([str(spec), 'label=IntDecoder,ToTensor'], handlers)
    assert [type(op).__name__ for op in both.make()['label']] == ['IntDecoder', 'ToTensor']
    with pytest.raises(ValueError, match="field 'image' is given twice"):
        parse_pipelines([str(spec), 'image=SimpleRGBImageDecoder'], handlers)


def test_bad_pipelines_name_what_is_wrong(images):
    handlers = Reader(images).handlers
    with pytest.raises(ValueError, match=r"the file has no field 'picture' \(fields: image, label\)"):
        parse_pipelines(['picture=IntDecoder'], handlers)
    with pytest.raises(ValueError, match="neither JSON nor YAML"):
        parse_pipelines(['image=[{"op": "RandomHorizontalFlip",'], handlers)
    with pytest.raises(ValueError, match="pipeline 'image', item 1: unknown operation 'RandomFlip': "
                                         "did you mean .*RandomHorizontalFlip"):
        parse_pipelines(['image=RandomFlip'], handlers)
    with pytest.raises(ValueError, match="label=3: a pipeline is a list of operations"):
        parse_pipelines(['label=3'], handlers)
    with pytest.raises(ValueError, match=r"pipeline 'image', item 2: RandomHorizontalFlip: .*'p'.*"
                                         r"\(RandomHorizontalFlip takes: flip_prob=0.5\)"):
        parse_pipelines(['image=["SimpleRGBImageDecoder", {"op": "RandomHorizontalFlip", "p": 1}]'], handlers)
    with pytest.raises(ValueError, match="given twice"):
        parse_pipelines(['label=IntDecoder', 'label=IntDecoder'], handlers)
    with pytest.raises(ValueError, match="no such file, and not pipelines"):
        parse_pipelines(['no_such_pipelines.yaml'], handlers)
    with pytest.raises(ValueError, match="cannot import 'no_such_module_here'"):
        parse_pipelines(['no_such_module_here:make'], handlers)
    with pytest.raises(FileNotFoundError):
        diagnose(os.path.join(os.path.dirname(images), 'missing.beton'))


def test_user_errors_end_with_one_line(images, tmp_path):
    assert_one_line_error(ffcv('doctor', images, '--pipeline', 'image=RandomFlip,ToTensor'),
                          "unknown operation 'RandomFlip'", "pipeline 'image', item 1")
    not_beton = tmp_path / 'notes.txt'
    not_beton.write_text('not a dataset\n')
    assert_one_line_error(ffcv('doctor', not_beton), 'notes.txt', 'is not a .beton file')
    assert_one_line_error(ffcv('doctor', tmp_path / 'missing.beton'), 'No such file or directory',
                          'missing.beton')
    assert_one_line_error(ffcv('doctor', images, '--process-cache-limit', '1GiB'), '--no-os-cache')
