"""FFCV 1.0's behaviour of the Loader, kept: temporary loaders in loops, default pipelines,
torch modules in pipelines, ``code``/``recompile``, ``order_kwargs``, ``filter``, the
memory managers' own API, and the error types FFCV 1.0 code catches."""
import gc
import threading

import numpy as np
import pytest
import torch
from ffcv_format import BytesField, DatasetWriter, FloatField, IntField, NDArrayField, Reader
from ffcv_loader import Loader, OrderOption, OSCacheManager, ProcessCacheManager
from ffcv_loader.memory import MemoryContext, MemoryManager
from ffcv_loader.testing import ids_file, images_file
from ffcv_ops import (AllocationQuery, Compiler, FloatDecoder, IntDecoder, ModuleWrapper, NDArrayDecoder,
                      Operation, SimpleRGBImageDecoder, ToTensor)


@pytest.fixture(scope='module')
def ids(tmp_path_factory):
    return ids_file(str(tmp_path_factory.mktemp('ids') / 'ids.beton'), 100)


def worker_threads():
    return [t for t in threading.enumerate() if t.name.startswith('ffcv-worker')]


# ------------------------------------------------------------ iterating keeps the loader alive


def make_loader(path):
    return Loader(path, batch_size=8, num_workers=2, order=OrderOption.RANDOM, seed=1)


def test_a_temporary_loader_in_a_for_loop_yields_every_batch(ids):
    batches = 0
    seen = []
    for (batch,) in Loader(ids, batch_size=8, num_workers=2):
        gc.collect()         # nothing but the iterator holds the loader
        batches += 1
        seen += batch[:, 0].tolist()
    assert batches == 12 and seen == list(range(96))
    assert sum(1 for _ in make_loader(ids)) == 12


def test_next_of_iter_of_a_temporary_loader(ids):
    (batch,) = next(iter(Loader(ids, batch_size=8, num_workers=2)))
    assert batch[:, 0].tolist() == list(range(8))
    it = iter(make_loader(ids))
    gc.collect()
    assert sum(1 for _ in it) == 12


def test_dropping_the_iterator_still_stops_its_threads(ids):
    gc.collect()
    assert worker_threads() == []
    it = iter(Loader(ids, batch_size=8, num_workers=2))
    next(it)
    assert worker_threads()
    del it
    gc.collect()
    assert worker_threads() == []


# ------------------------------------------------------------ default pipelines and torch modules


class AddOne(torch.nn.Module):
    def forward(self, x):
        return x + 1


def test_fields_not_named_get_the_default_decoder_and_to_tensor(tmp_path):
    path = tmp_path / 'x.beton'
    DatasetWriter(path, {'i': IntField(), 'f': FloatField(), 'a': NDArrayField(np.dtype('<f4'), (3,))},
                  progress=False).from_indexed_dataset([(k, k / 2, np.full(3, k, np.float32)) for k in range(20)])
    loader = Loader(path, batch_size=5, num_workers=1, pipelines={'a': [NDArrayDecoder()]})
    i, f, a = next(iter(loader))
    assert isinstance(i, torch.Tensor) and i.dtype == torch.int64 and i.shape == (5, 1)
    assert isinstance(f, torch.Tensor) and f.dtype == torch.float64 and f[:, 0].tolist() == [0, 0.5, 1, 1.5, 2]
    assert isinstance(a, np.ndarray) and a.shape == (5, 3)   # a pipeline given as it is


def test_a_torch_module_in_a_pipeline_is_wrapped(ids):
    loader = Loader(ids, batch_size=10, num_workers=2, pipelines={'id': [IntDecoder(), ToTensor(), AddOne()]})
    op = loader.pipelines[0].operations[2]
    assert isinstance(op, ModuleWrapper) and isinstance(op.module, AddOne)
    (batch,) = next(iter(loader))
    assert batch[:, 0].tolist() == list(range(1, 11))


# ------------------------------------------------------------ code and recompile


class Doubler(Operation):
    def generate_code(self):
        def double(x, dst):
            dst[:] = x * 2
            return dst
        return double

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


@pytest.mark.parametrize('recompile', [False, True])
def test_loader_code_is_generated_at_construction_and_again_only_with_recompile(ids, recompile):
    loader = Loader(ids, batch_size=10, num_workers=1, recompile=recompile,
                    pipelines={'id': [IntDecoder(), Doubler(), ToTensor()]})
    assert loader.code is not None
    first = loader.code
    (batch,) = next(iter(loader))
    assert batch[:, 0].tolist() == list(range(0, 20, 2))
    iter(loader)
    assert (loader.code == first) is not recompile
    assert loader.generate_code() is loader.code and loader.code != first


# ------------------------------------------------------------ order_kwargs


def test_order_kwargs_reach_the_order(tmp_path):
    path = ids_file(str(tmp_path / 'paged.beton'), 400, payload=4096)
    loader = Loader(path, batch_size=16, num_workers=1, order=OrderOption.QUASI_RANDOM, seed=3,
                    order_kwargs={'pages_per_group': 2})
    assert loader.traversal_order.group_pages == 2
    ids = np.concatenate([b[0][:, 0].numpy().copy() for b in loader])
    assert len(set(ids.tolist())) == len(ids) == 400


def test_order_kwargs_reach_an_ffcv1_style_order(ids):
    from ffcv_loader import TraversalOrder

    class EveryKth(TraversalOrder):
        def __init__(self, loader, k=1):
            super().__init__(loader)
            self.k = k

        def sample_order(self, epoch):
            return self.indices[::self.k]

    loader = Loader(ids, batch_size=5, num_workers=1, order=EveryKth, order_kwargs={'k': 4}, drop_last=False)
    ids_seen = np.concatenate([b[0][:, 0].numpy().copy() for b in loader])
    assert ids_seen.tolist() == list(range(0, 100, 4))


# ------------------------------------------------------------ filter


def test_filter_applies_the_condition_to_the_pipelines_output(tmp_path):
    path = tmp_path / 'x.beton'
    values = np.sin(np.arange(300))
    DatasetWriter(path, {'index': IntField(), 'value': FloatField()}, progress=False).from_indexed_dataset(
        [(k, v) for k, v in enumerate(values)])
    loader = Loader(path, batch_size=8, num_workers=2, seed=5, order=OrderOption.RANDOM,
                    pipelines={'value': [FloatDecoder(), Doubler(), ToTensor()]})
    kept = loader.filter('value', lambda value: 0.5 <= value[0] < 1)      # the doubled value
    expected = np.flatnonzero((2 * values >= 0.5) & (2 * values < 1))
    assert sorted(kept.indices.tolist()) == expected.tolist()
    got = np.concatenate([index[:, 0].numpy().copy() for index, value in kept])
    assert len(got) == len(kept) * 8 and set(got.tolist()) <= set(expected.tolist())
    # on a loader over a subset, only that subset is filtered (FFCV 1.0 lost it)
    subset = Loader(path, batch_size=8, num_workers=1, indices=np.arange(100, 300),
                    pipelines={'value': [FloatDecoder(), Doubler(), ToTensor()]})
    assert subset.filter('value', lambda v: 0.5 <= v[0] < 1).indices.tolist() == expected[expected >= 100].tolist()


# ------------------------------------------------------------ memory managers on their own


def test_os_cache_manager_api_as_ffcv1_tests_use_it(tmp_path):
    path = tmp_path / 'x.beton'
    rng = np.random.default_rng(0)
    blobs = [rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8) for _ in range(50)]
    DatasetWriter(path, {'blob': BytesField()}, progress=False).from_indexed_dataset([(b,) for b in blobs])
    reader = Reader(path)
    manager = OSCacheManager(reader)
    assert isinstance(manager, MemoryManager)
    context = manager.schedule_epoch(np.array([0, 1]))
    assert isinstance(context, MemoryContext)
    read = manager.compile_reader()
    with context:
        for ptr, sample in zip(reader.alloc_table['ptr'], reader.alloc_table['sample_id']):
            np.testing.assert_array_equal(read(ptr, context.state), blobs[int(sample)])
    assert len(manager.page_to_samples) >= 1 and manager.sample_to_pages[0] == {int(reader.alloc_table['ptr'][0])
                                                                              // reader.page_size}


def test_process_cache_manager_schedules_batches_by_hand(tmp_path):
    path = ids_file(str(tmp_path / 'paged.beton'), 600, payload=4096)
    reader = Reader(path)
    manager = ProcessCacheManager(reader, limit_bytes=8 * reader.page_size)
    batches = [np.arange(0, 100), np.arange(500, 600), np.arange(250, 300)]
    read = manager.compile_reader()
    with manager.schedule_epoch(batches) as context:
        for b, batch in enumerate(batches):
            context.start_batch(b)
            for i in batch:
                data = read(reader.metadata['data'][i], context.state)
                assert data.view(np.int32)[0] == i and data.view(np.int32)[-1] == i
    assert manager._refs == {}      # every page let go
    manager.close()


def test_a_decoder_driven_by_hand_like_ffcv1s_tests(tmp_path):
    path, samples = images_file(str(tmp_path / 'im.beton'), 20, write_mode='raw', sizes=(30, 31))
    reader = Reader(path)
    manager = OSCacheManager(reader)
    context = manager.schedule_epoch(np.array([0, 1]))
    Compiler.set_enabled(True)
    with context:
        decoder = reader.handlers['image'].get_decoder_class()()
        assert isinstance(decoder, SimpleRGBImageDecoder)
        decoder.accept_globals(reader.metadata['f0'], manager.compile_reader())
    decode = Compiler.compile(decoder.generate_code())
    buffer = np.zeros((1, 30, 30, 3), np.uint8)
    for i in range(20):
        np.testing.assert_array_equal(decode(np.array([i]), buffer, reader.metadata['f0'], context.state)[0],
                                      samples[i][0])


# ------------------------------------------------------------ error types FFCV 1.0 code catches


def test_simple_decoder_on_images_of_several_sizes_is_a_type_error_at_construction(tmp_path):
    path, _ = images_file(str(tmp_path / 'im.beton'), 10, sizes=(20, 40))
    with pytest.raises(TypeError, match='SimpleRGBImageDecoder needs images of one size'):
        Loader(path, batch_size=5, pipelines={'image': [SimpleRGBImageDecoder()]})


def test_a_custom_field_without_a_handler_is_a_value_error(tmp_path):
    class Text(NDArrayField):
        def __init__(self):
            super().__init__(np.dtype('u1'), (4,))

    path = tmp_path / 'x.beton'
    DatasetWriter(path, {'t': Text()}, progress=False).from_indexed_dataset([(np.zeros(4, np.uint8),)] * 3)
    with pytest.raises(ValueError, match='custom_handlers'):
        Loader(path, batch_size=2)
    loader = Loader(path, batch_size=3, custom_fields={'t': Text}, pipelines={'t': [NDArrayDecoder()]})
    assert next(iter(loader))[0].shape == (3, 4)


def test_the_default_cache_follows_ffcv1s_environment_variable(ids, monkeypatch):
    assert Loader(ids, batch_size=8).os_cache is True
    monkeypatch.setenv('FFCV_DEFAULT_CACHE_PROCESS', '1')
    loader = Loader(ids, batch_size=8, num_workers=1)
    assert loader.os_cache is False and isinstance(loader.memory_manager, ProcessCacheManager)
    assert sum(1 for _ in loader) == 12
    assert Loader(ids, batch_size=8, os_cache=True).os_cache is True
