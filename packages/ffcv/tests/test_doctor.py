"""`ffcv doctor`: measured stages, the bottleneck it names, its advice, its errors.

Two real setups with a known bottleneck:

- decode: JPEG images of 256x256 decoded and cropped on one worker thread, read from the
  page cache (a few MB): decoding is far slower than reading memory.
- storage: ``os_cache=False`` with a process cache of 8 of the file's 2 MiB pages and order
  RANDOM: every sample of a batch makes the loader read (most of) a 2 MiB page for 35 kB of
  data. This is how the loader really behaves with a small ``process_cache_limit`` (the
  test checks the loader as configured is measured much slower than decoding alone), not
  a simulation.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from ffcv_loader.doctor import STAGE_NAMES, diagnose, parse_pipelines
from ffcv_format import IntField, Reader, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset
from ffcv_loader.testing import ids_file

FFCV = os.path.join(os.path.dirname(sys.executable), 'ffcv')
CROP_112 = ('image=[{"op": "RandomResizedCropRGBImageDecoder", "output_size": [112, 112]}, "RandomHorizontalFlip", '
            '"ToTensor", "ToTorchImage"]')
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')

TINY_MODEL = '''
import torch


def make():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4))
'''


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


@pytest.fixture(scope='module')
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('model') / 'tiny_model.py'
    path.write_text(TINY_MODEL)
    return path


@pytest.fixture(scope='module')
def decode_bound(images, model_file):
    """diagnose() with one worker thread, crops of 112 and a small model on the CPU."""
    return diagnose(images, [CROP_112, 'label=IntDecoder,ToTensor'], workers=1, batches=2,
                    model=f'{model_file}:make', device='cpu')


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


def test_diagnose_names_decode_and_advises_with_numbers(decode_bound):
    report = decode_bound
    assert report.bottleneck == 'decode'
    assert report.settings['workers'] == 1 and report.settings['batch_size'] == 200
    one = report.measurements['decode']['one']['samples_s']
    assert report.bottleneck_line.startswith(f"Bottleneck: decode + augment (1 worker thread: {one:,.0f}")
    settings = [r.setting for r in report.recommendations]
    assert any('max_resolution=128' in s or 'num_workers=' in s for s in settings), settings
    for rec in report.recommendations:
        if rec.expected_gain is not None:
            assert rec.expected_gain >= 1 and _has_number(rec.why)
    text = report.render()
    assert report.bottleneck_line in text and 'What to change:' in text
    # the model was timed on the CPU, and the report says where
    model = report.measurements['model']
    assert model['device'] == 'cpu' and model['samples_s'] > 0 and model['mode'] == 'forward+backward'
    assert model['input_shape'] == [200, 3, 112, 112]
    assert 'model make on cpu, forward+backward' in text


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the report of a machine without CUDA')
def test_without_cuda_the_transfer_is_skipped(decode_bound):
    assert decode_bound.measurements['transfer'] == {'skipped': 'no CUDA device: skipped'}
    line = next(line for line in decode_bound.render().splitlines() if 'host-to-device transfer' in line)
    assert line.rstrip().endswith('no CUDA device: skipped')


def test_storage_bound_by_a_small_process_cache_with_random_order(tmp_path):
    path = ids_file(str(tmp_path / 'ids.beton'), 1200, page_size=1 << 21, payload=8192)
    report = diagnose(path, batch_size=8, batches=20, order='random', os_cache=False,
                      process_cache_limit=16 << 20)
    decode = report.measurements['decode']
    # the mechanism is real: the loader as configured is much slower than decoding from memory
    assert decode['configured']['samples_s'] < 0.5 * decode['chosen']['samples_s'], decode
    assert report.bottleneck == 'storage', report.render()
    assert report.bottleneck_line.startswith('Bottleneck: storage read (')
    assert 'order RANDOM' in report.measurements['storage']['at_settings']['source']
    settings = ' | '.join(r.setting for r in report.recommendations)
    assert 'os_cache=True' in settings and 'QUASI_RANDOM' in settings, report.render()
    quasi = next(r for r in report.recommendations if 'QUASI_RANDOM' in r.setting)
    assert quasi.expected_gain > 1 and 'measured' in quasi.why


@pytest.mark.gpu
@needs_cuda
def test_cuda_transfer_and_model(images, model_file):
    report = diagnose(images, [CROP_112], batches=2, model=f'{model_file}:make', device='cuda')
    transfer = report.measurements['transfer']
    assert transfer['pinned']['mb_s'] > 0 and transfer['pageable']['mb_s'] > 0
    assert transfer['bytes_per_sample'] == pytest.approx(3 * 112 * 112 + 8)
    assert report.measurements['model']['device'] == 'cuda' and report.measurements['model']['samples_s'] > 0
    assert report.bottleneck in STAGE_NAMES
    assert 'transfer to cuda, pinned' in report.render()


def test_pipelines_from_a_file_and_left_out_fields(images, tmp_path):
    handlers = Reader(images).handlers
    module = tmp_path / 'pipes.py'
    module.write_text('from ffcv_ops import CenterCropRGBImageDecoder, ToTensor\n\n\n'
                      'def make():\n    return {"image": [CenterCropRGBImageDecoder((64, 64), 0.875), ToTensor()],'
                      ' "label": None}\n')
    choice = parse_pipelines([f'{module}:make'], handlers)
    assert choice.origin == f'from {module}:make' and choice.described['label'] == 'left out'
    pipelines = choice.make()
    assert pipelines['label'] is None and len(pipelines['image']) == 2
    choice = parse_pipelines(['label=None', 'image='], handlers)
    assert choice.make() == {'label': None, 'image': []}
    assert choice.described['image'] == '(default decoder: SimpleRGBImageDecoder)'
    default = parse_pipelines(None, handlers)
    assert default.origin.startswith('default')
    assert default.described['image'].startswith('RandomResizedCropRGBImageDecoder(output_size=(224, 224))')


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


def test_pipeline_text_is_never_evaluated(images, tmp_path):
    handlers = Reader(images).handlers
    marker = tmp_path / 'evaluated'
    text = f"image=open({str(marker)!r}, 'w')"
    with pytest.raises(ValueError, match="Python expressions are not evaluated"):
        parse_pipelines([text], handlers)
    assert not marker.exists()


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
