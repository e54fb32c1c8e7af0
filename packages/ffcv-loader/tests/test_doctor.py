"""`ffcv_loader.doctor` from Python: measured stages, the bottleneck it names, its advice,
its pipelines. (The `ffcv doctor` command line is tested with the meta-package, in
packages/ffcv/tests/test_doctor.py; the decision rules alone in test_doctor_analysis.py.)

Two real setups with a known bottleneck:

- decode: JPEG images of 256x256 decoded and cropped on one worker thread, read from the
  page cache (a few MB): decoding is far slower than reading memory.
- storage: ``os_cache=False`` with a process cache of 8 of the file's 2 MiB pages and order
  RANDOM: every sample of a batch makes the loader read (most of) a 2 MiB page for 35 kB of
  data. This is how the loader really behaves with a small ``process_cache_limit`` (the
  test checks the loader as configured is measured much slower than decoding alone), not
  a simulation.
"""
import numpy as np
import pytest
import torch
from ffcv_format import IntField, Reader, RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset
from ffcv_loader.doctor import STAGE_NAMES, diagnose, parse_pipelines
from ffcv_loader.testing import ids_file

CROP_112 = ('image=[{"op": "RandomResizedCropRGBImageDecoder", "output_size": [112, 112]}, "RandomHorizontalFlip", '
            '"ToTensor", "ToTorchImage"]')
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')

TINY_MODEL = '''
import torch


def make():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4))
'''


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


def test_pipeline_text_is_never_evaluated(images, tmp_path):
    handlers = Reader(images).handlers
    marker = tmp_path / 'evaluated'
    text = f"image=open({str(marker)!r}, 'w')"
    with pytest.raises(ValueError, match="Python expressions are not evaluated"):
        parse_pipelines([text], handlers)
    assert not marker.exists()
