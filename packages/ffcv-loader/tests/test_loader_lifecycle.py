"""Threads and memory left behind, mid-epoch resume, the process cache."""
import gc
import os
import threading

import numpy as np
import pytest
import torch
from ffcv_loader import Loader, OrderOption
from ffcv_format import Reader
from ffcv_loader.memory import sample_pages
from ffcv_loader.testing import ids_file, images_file
from ffcv_ops import RandomHorizontalFlip, RandomResizedCropRGBImageDecoder


@pytest.fixture(scope='module')
def paged(tmp_path_factory):
    # 600 samples of 16 KiB over 2 MiB pages: about 5 pages
    return ids_file(str(tmp_path_factory.mktemp('paged') / 'paged.beton'), 600, payload=4096)


def loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith(('ffcv-worker', 'ffcv-page-reader'))]


def test_no_thread_growth_after_many_iters_and_early_breaks(paged):
    loader = Loader(paged, batch_size=32, num_workers=2, order=OrderOption.RANDOM)
    baseline = threading.active_count()
    for i in range(200):
        it = iter(loader)
        if i % 3 == 0:
            next(it)
        elif i % 3 == 1:
            for _ in it:
                break
        del it
    gc.collect()
    assert threading.active_count() <= baseline
    assert loader_threads() == []
    # a full epoch after all that still gives every sample
    ids = np.concatenate([b[0][:, 0].numpy().copy() for b in loader])
    assert len(set(ids.tolist())) == len(ids) == 576 and set(ids.tolist()) <= set(range(600))


def test_deleting_the_loader_mid_epoch_stops_its_threads(paged):
    loader = Loader(paged, batch_size=32, num_workers=2, os_cache=False)
    it = iter(loader)
    next(it)
    assert loader_threads()
    del it, loader
    gc.collect()
    assert loader_threads() == []


def test_new_iter_stops_the_previous_epoch(paged):
    loader = Loader(paged, batch_size=32, num_workers=2)
    first = iter(loader)
    next(first)
    second = iter(loader)
    with pytest.raises(StopIteration):
        next(first)
    assert len(list(second)) == len(loader)


def snapshot(batch):
    """A batch's outputs copied out of the loader's reused buffers, as numpy arrays."""
    return tuple(x.numpy().copy() if isinstance(x, torch.Tensor) else np.array(x, copy=True) for x in batch)


def collect(loader, epochs):
    return [[snapshot(batch) for batch in loader] for _ in range(epochs)]


@pytest.mark.parametrize('os_cache', [True, False])
def test_resume_mid_epoch_gives_exactly_the_uninterrupted_batches(tmp_path, os_cache):
    path, _ = images_file(str(tmp_path / 'im.beton'), 120)

    def make():
        return Loader(path, batch_size=16, num_workers=2, order=OrderOption.RANDOM, seed=9, os_cache=os_cache,
                      pipelines={'image': [RandomResizedCropRGBImageDecoder((20, 20)), RandomHorizontalFlip()]})

    reference = collect(make(), 3)
    interrupted = make()
    seen = collect(interrupted, 1)                   # epoch 0 complete
    it = iter(interrupted)
    seen.append([snapshot(next(it)) for _ in range(3)])  # 3 batches of epoch 1
    state = interrupted.state_dict()
    assert state['epoch'] == 1 and state['batch'] == 3
    del it, interrupted

    resumed = make()
    resumed.load_state_dict(state)
    rest = collect(resumed, 2)          # the rest of epoch 1, then epoch 2
    combined = [seen[0], seen[1] + rest[0], rest[1]]
    for epoch_ref, epoch_got in zip(reference, combined):
        assert len(epoch_ref) == len(epoch_got) == 7
        for a, b in zip(epoch_ref, epoch_got):
            assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert resumed.state_dict()['epoch'] == 3 and resumed.state_dict()['batch'] == 0


def test_load_state_dict_rejects_another_loaders_state(paged):
    state = Loader(paged, batch_size=32).state_dict()
    with pytest.raises(ValueError, match='batch_size 32'):
        Loader(paged, batch_size=16).load_state_dict(state)
    with pytest.raises(ValueError, match='not a Loader state'):
        Loader(paged, batch_size=32).load_state_dict({'epoch': 1})


@pytest.mark.parametrize('order', list(OrderOption))
def test_process_cache_matches_os_cache_within_its_memory_limit(paged, order):
    # sequential batches touch 1 or 2 of the file's pages; random ones touch them all
    file_pages = len(np.unique(sample_pages(Reader(paged), ['data'])))
    assert file_pages >= 4
    limit_pages = 2 if order is OrderOption.SEQUENTIAL else file_pages
    pages = {}
    for os_cache in (True, False):
        loader = Loader(paged, batch_size=40, num_workers=2, order=order, seed=1, os_cache=os_cache,
                        drop_last=False, process_cache_limit=limit_pages << 21)
        pages[os_cache] = collect(loader, 2)
        if not os_cache:
            manager = loader.memory_manager
            assert manager.num_slots == limit_pages and manager.resident_bytes <= limit_pages << 21
    for epoch_a, epoch_b in zip(pages[True], pages[False]):
        for a, b in zip(epoch_a, epoch_b):
            assert all(np.array_equal(x, y) for x, y in zip(a, b))
    ids = np.concatenate([b[0][:, 0] for b in pages[False][0]])
    assert np.array_equal(np.sort(ids), np.arange(600))
    data = np.concatenate([b[1] for b in pages[False][0]])
    assert np.array_equal(data[:, 0], ids) and np.array_equal(data[:, -1], ids)


def test_process_cache_too_small_for_a_batch_says_so(paged):
    loader = Loader(paged, batch_size=600, num_workers=1, os_cache=False, process_cache_limit=1 << 21)
    with pytest.raises(MemoryError, match='process cache'):
        next(iter(loader))


def test_dropping_the_loader_mid_epoch_frees_its_buffers(tmp_path):
    import tracemalloc

    path, _ = images_file(str(tmp_path / 'im.beton'), 64)
    pipelines = {'image': [RandomResizedCropRGBImageDecoder((128, 128))]}
    # one epoch first, so that compiled code and caches are not counted below
    for _ in Loader(path, batch_size=32, num_workers=2, pipelines=pipelines):
        pass
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        loader = Loader(path, batch_size=32, num_workers=2, pipelines=pipelines)
        it = iter(loader)
        next(it)
        ring = tracemalloc.get_traced_memory()[0] - baseline
        assert ring > 5 * 32 * 128 * 128 * 3            # the ring of 5 slots of image batches
        del it, loader
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert left < ring / 20, (left, ring)
    assert loader_threads() == []


def _open_descriptors():
    return len(os.listdir('/proc/self/fd'))


def _resident_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir('/proc/self/fd'), reason='needs /proc')
@pytest.mark.parametrize('os_cache', [True, False])
def test_no_growth_over_300_broken_and_200_full_epochs(tmp_path, os_cache):
    # 96 samples of 1 KiB in batches of 16: 6 batches an epoch
    path = ids_file(str(tmp_path / 'small.beton'), 96, payload=256)
    loader = Loader(path, batch_size=16, num_workers=2, order=OrderOption.RANDOM, os_cache=os_cache)
    for _ in range(20):          # warm up: compiled code, caches, allocator pools
        for _ in loader:
            pass
    gc.collect()
    threads, descriptors, resident = threading.active_count(), _open_descriptors(), _resident_bytes()
    batches = 0
    for i in range(300):         # early-broken epochs, every way out
        it = iter(loader)
        next(it)
        if i % 3 == 0:
            for _ in it:
                break
        elif i % 3 == 1:
            it.close()
        del it
    for _ in range(200):         # full epochs
        for _ in loader:
            batches += 1
    gc.collect()
    assert batches == 200 * 6
    assert threading.active_count() <= threads
    assert _open_descriptors() <= descriptors
    grown = _resident_bytes() - resident
    assert grown < 32 << 20, f'resident memory grew by {grown / 2**20:.1f} MiB'
