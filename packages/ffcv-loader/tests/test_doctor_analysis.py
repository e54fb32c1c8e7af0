"""`ffcv doctor`'s decision rules on made-up measurements: no file is read, nothing is timed.

``analyse()`` is a pure function of a ``Measurements``; each test builds one where a known
stage is slowest and checks the bottleneck, the kinds of recommendation and an expected gain
worked out here from the same figures.
"""
import copy

import numpy as np
import pytest
from ffcv_loader.doctor import (STAGE_NAMES, ColdRead, FileFacts, JpegTiming, LoaderRun, Measurements,
                                ModelRun, Rate, Skipped, StorageReads, TransferRates, WarmRead, analyse)
from ffcv_loader.doctor.analysis import MIN_GAIN, storage_rate, suggested_max_resolution

MiB = 1 << 20
PAGE = 2 * MiB


def file_facts(num_samples=10_000, bytes_per_sample=50_000, images=None):
    size = num_samples * bytes_per_sample
    return FileFacts(path='/no/such/file.beton', file_size=size, num_samples=num_samples, page_size=PAGE,
                     data_start=PAGE, data_end=size, fields={'image': 'RGBImageField', 'label': 'IntField'},
                     handlers={}, extents=[], images=images or {}, jpeg_samples={})


def cold(mb_s, bytes_per_sample):
    return ColdRead(mb_s=mb_s, bytes=int(mb_s * 1e6), reads=100, seconds=1.0, reads_s=100.0,
                    samples_s=mb_s * 1e6 / bytes_per_sample)


def storage_figures(facts, warm_mb_s=10_000.0):
    """Cold and warm reads as measure_storage() gives them (warm: ``warm_mb_s``)."""
    bps = facts.file_size / facts.num_samples
    warm = WarmRead(mb_s=warm_mb_s, bytes=facts.file_size, seconds=0.1, range=facts.file_size,
                    samples_s=warm_mb_s * 1e6 / bps)
    return StorageReads(bytes_per_sample=bps, page_size=facts.page_size, evicted=True,
                        resident_after_eviction=0.0, not_evicted_because=None,
                        cold_random_samples=cold(200.0, bps),
                        cold_random_pages=cold(800.0, bps), cold_sequential=cold(1_000.0, bps), warm=warm,
                        warm_range=facts.file_size)


def loader(samples_s, workers=1):
    return LoaderRun(workers=workers, samples_s=samples_s, batches=10, samples=2560, seconds=1.0,
                     first_batch_s=0.1)


def measurements(*, facts=None, decode, workers=1, cores=1, order='random', os_cache=True,
                 process_cache_limit=None, memory=64 << 30, jpeg=None, transfer=None, model=None, crops=None,
                 device_copy=False):
    facts = facts or file_facts()
    settings = {'workers': workers, 'cores': cores, 'batch_size': 256, 'order': order, 'os_cache': os_cache,
                'process_cache_limit': process_cache_limit}
    return Measurements(file=facts, storage=storage_figures(facts), decode=decode, jpeg=jpeg or {},
                        transfer=transfer or Skipped('no CUDA device: skipped'),
                        model=model or Skipped('no --model given'), settings=settings, memory=memory,
                        crops=crops or {}, device_copy=device_copy)


def kinds(recommendations):
    """What each recommendation changes, in a word."""
    words = {'num_workers=': 'workers', 'max_resolution=': 'max_resolution', '--jpeg-quality': 'jpeg_quality',
             'images raw': 'raw', 'os_cache=True': 'os_cache', 'QUASI_RANDOM': 'quasi_random',
             'ToDevice(': 'to_device', 'uint8': 'uint8', 'nothing in data loading': 'nothing',
             'a faster disk': 'faster_disk'}
    return [next(kind for word, kind in words.items() if word in r.setting) for r in recommendations]


def test_storage_far_slower_than_decode_recommends_the_os_cache_and_quasi_random():
    # os_cache=False, order RANDOM, a process cache of 8 pages: the loader as configured
    # measured 2,000 samples/s, 40,000 with QUASI_RANDOM; decoding from memory gives 80,000
    decode = {'one': loader(20_000.0), 'chosen': loader(80_000.0, 4), 'configured': loader(2_000.0, 4),
              'configured_quasi': loader(40_000.0, 4)}
    measured = measurements(decode=decode, workers=4, cores=4, os_cache=False, process_cache_limit=8 * PAGE)
    result = analyse(measured)
    assert result.bottleneck == 'storage'
    assert result.rates == {'storage': 2_000.0, 'decode': 80_000.0}
    assert result.bottleneck_line.startswith(
        'Bottleneck: storage read (2,000 samples/s: process cache of 8 of ')
    assert kinds(result.recommendations) == ['os_cache', 'quasi_random']
    os_cache, quasi = result.recommendations
    # the change lifts storage to what was measured; the loader then runs at the slower of the two
    assert os_cache.expected_gain == pytest.approx(min(80_000.0, 80_000.0) / 2_000.0)
    assert quasi.expected_gain == pytest.approx(min(40_000.0, 80_000.0) / 2_000.0)
    assert '40,000 samples/s against 2,000' in quasi.why


def test_a_file_larger_than_memory_read_randomly_recommends_pages_in_quasi_random_order():
    facts = file_facts()
    measured = measurements(facts=facts, decode={'one': loader(50_000.0), 'chosen': loader(50_000.0)},
                            memory=facts.file_size // 2)
    result = analyse(measured)
    bps = facts.file_size / facts.num_samples
    random_samples = 200e6 / bps                 # cold random samples: what os_cache=True reads
    assert result.bottleneck == 'storage'
    assert result.rates['storage'] == pytest.approx(random_samples)
    assert kinds(result.recommendations) == ['quasi_random']
    pages = storage_rate(measured.storage, facts, os_cache=False, order='quasi_random', batch_size=256,
                         memory=measured.memory)[0]
    assert pages == pytest.approx(800e6 / bps)   # each page read once an epoch, at the random-pages rate
    assert result.recommendations[0].expected_gain == pytest.approx(round(pages / random_samples, 2))


def test_decode_slowest_on_one_of_eight_cores_recommends_more_workers():
    decode = {'one': loader(1_000.0), 'chosen': loader(1_000.0), 'all_cores': loader(6_000.0, 8)}
    result = analyse(measurements(decode=decode, workers=1, cores=8))
    assert result.bottleneck == 'decode'
    assert result.bottleneck_line.startswith('Bottleneck: decode + augment (1 worker thread: 1,000 samples/s')
    assert kinds(result.recommendations) == ['workers']
    more = result.recommendations[0]
    assert more.setting == 'num_workers=8 (--workers 8)'
    assert more.expected_gain == pytest.approx(6_000.0 / 1_000.0)   # storage (warm) is far faster
    assert '6,000 samples/s against 1,000 with 1' in more.why
    assert not result.notes                                         # 6x on 8 cores is not poor scaling


def test_more_workers_that_do_not_help_are_not_recommended_and_poor_scaling_is_noted():
    decode = {'one': loader(1_000.0), 'chosen': loader(1_000.0), 'all_cores': loader(1_050.0, 8)}
    result = analyse(measurements(decode=decode, workers=1, cores=8))
    assert result.bottleneck == 'decode'
    assert 1_050.0 / 1_000.0 < MIN_GAIN and result.recommendations == []
    assert [note.split(':')[0] for note in result.notes] == ['poor scaling']


def image_stats(height, width, count=100):
    heights, widths = np.full(count, height, np.int64), np.full(count, width, np.int64)
    return {'sampled': count, 'jpeg_share': 1.0, 'raw_share': 0.0, 'png_share': 0.0,
            'median_height': float(height), 'median_width': float(width),
            'mean_pixels': float(height * width), 'heights': heights, 'widths': widths, 'channels': 3}


def jpeg_figures(decode_s, height, width, decode_q75_s=None):
    q75 = decode_s if decode_q75_s is None else decode_q75_s
    return JpegTiming(images=24, decode_s=decode_s, decode_q75_s=q75,
                      mean_bytes=60_000.0, mean_bytes_q75=40_000.0, mean_pixels=float(height * width))


def test_images_stored_much_larger_than_the_crop_recommend_a_max_resolution():
    # 512x512 JPEGs cropped to 112x112; one thread takes 1 ms per sample, 0.6 ms of it decoding the JPEG
    facts = file_facts(images={'image': image_stats(512, 512)})
    measured = measurements(facts=facts, decode={'one': loader(1_000.0), 'chosen': loader(1_000.0)},
                            jpeg={'image': jpeg_figures(0.6e-3, 512, 512)},
                            crops={'image': (112, 112), 'label': None})
    result = analyse(measured)
    assert result.bottleneck == 'decode'
    assert kinds(result.recommendations) == ['max_resolution', 'raw']
    smaller = result.recommendations[0]
    target = suggested_max_resolution((112, 112))
    assert target == 128 and smaller.setting.startswith('store at max_resolution=128 ')
    kept = (128 * 128) / (512 * 512)                       # the share of the pixels left to decode
    per_sample, jpeg = 1e-3, 0.6e-3
    gain = per_sample / (per_sample - jpeg * (1 - kept))
    assert smaller.expected_gain == pytest.approx(round(gain, 2))
    assert f"keeps {kept:.0%} of the pixels" in smaller.why and '0.60 ms per image' in smaller.why
    raw = result.recommendations[1]
    assert raw.expected_gain == pytest.approx(round(per_sample / (per_sample - jpeg * 0.5), 2))


def test_images_stored_at_the_crop_size_get_no_max_resolution_and_a_cheaper_quality():
    facts = file_facts(images={'image': image_stats(128, 128)})
    jpeg = {'image': jpeg_figures(1.0e-3, 128, 128, decode_q75_s=0.5e-3)}
    measured = measurements(facts=facts, decode={'one': loader(1_000.0), 'chosen': loader(1_000.0)},
                            jpeg=jpeg, crops={'image': (112, 112)})
    facts.images['image']['jpeg_share'] = 0.4        # fewer than half JPEG: no raw advice
    result = analyse(measured)
    assert result.bottleneck == 'decode'
    assert kinds(result.recommendations) == ['jpeg_quality']
    jpeg_time = 1.0e-3 * 0.4                          # per sample: 40% of the images are JPEG
    gain = 1e-3 / (1e-3 - jpeg_time * (1 - 0.5e-3 / 1.0e-3))
    assert result.recommendations[0].expected_gain == pytest.approx(round(gain, 2))


def test_a_field_left_out_of_the_pipelines_gets_no_image_advice():
    facts = file_facts(images={'image': image_stats(512, 512)})
    measured = measurements(facts=facts, decode={'one': loader(1_000.0), 'chosen': loader(1_000.0)},
                            jpeg={'image': jpeg_figures(0.6e-3, 512, 512)}, crops={'label': None})
    assert analyse(measured).recommendations == []


def model_figures(samples_s, device='cuda'):
    return ModelRun(device=device, samples_s=samples_s, steps=10, seconds=1.0, mode='forward+backward',
                    input_shape=[256, 3, 224, 224], name='resnet50')


def test_the_model_slowest_means_no_loader_change():
    decode = {'one': loader(2_000.0), 'chosen': loader(12_000.0, 8)}
    result = analyse(measurements(decode=decode, workers=8, cores=8, model=model_figures(2_000.0)))
    assert result.bottleneck == 'model'
    assert kinds(result.recommendations) == ['nothing']
    assert result.recommendations[0].expected_gain is None
    headroom = 12_000.0 / 2_000.0                # data loading against what the model takes
    assert (f"({headroom:.1f}x what the model takes): data loading is not your bottleneck"
            in result.bottleneck_line)
    assert result.notes == []                    # timed on a GPU (no note about sharing the cores); 6x on 8


def test_a_model_timed_on_the_cpu_is_noted():
    decode = {'one': loader(3_000.0), 'chosen': loader(3_000.0)}
    result = analyse(measurements(decode=decode, model=model_figures(500.0, device='cpu')))
    assert result.bottleneck == 'model'
    assert any(note.startswith('the model was timed on the CPU') for note in result.notes)


def transfer_figures(pageable_mb_s, pinned_mb_s, bytes_per_sample, float_bytes):
    def rate(mb_s):
        return Rate(mb_s=mb_s, samples_s=mb_s * 1e6 / bytes_per_sample)

    return TransferRates(device='cuda', bytes_per_batch=int(bytes_per_sample * 256),
                         bytes_per_sample=bytes_per_sample, float_image_bytes_per_sample=float_bytes,
                         pageable=rate(pageable_mb_s), pinned=rate(pinned_mb_s))


def test_a_slow_pageable_copy_of_float_images_recommends_to_device_and_uint8():
    bps = 3 * 224 * 224 * 4 + 8                   # float32 images and a label
    transfer = transfer_figures(600.0, 1_200.0, bps, 3 * 224 * 224 * 4)
    decode = {'one': loader(5_000.0), 'chosen': loader(20_000.0, 8)}
    result = analyse(measurements(decode=decode, workers=8, cores=8, transfer=transfer))
    pageable, pinned = 600e6 / bps, 1_200e6 / bps
    assert result.bottleneck == 'transfer' and result.rates['transfer'] == pytest.approx(pageable)
    assert kinds(result.recommendations) == ['to_device', 'uint8']
    to_device, uint8 = result.recommendations
    assert to_device.expected_gain == pytest.approx(round(pinned / pageable, 2))
    quarter = bps / (bps - 3 * 224 * 224 * 4 * 3 / 4)
    assert uint8.expected_gain == pytest.approx(round(quarter, 2))


def test_the_analysis_is_pure():
    decode = {'one': loader(1_000.0), 'chosen': loader(1_000.0), 'all_cores': loader(6_000.0, 8)}
    measured = measurements(decode=decode, workers=1, cores=8)
    before = copy.deepcopy(measured)
    first, second = analyse(measured), analyse(measured)
    assert first == second
    assert measured.storage == before.storage and measured.decode == before.decode
    assert set(first.rates) <= set(STAGE_NAMES)
