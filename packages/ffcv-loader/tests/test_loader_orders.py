"""Orders through the Loader: coverage, no repeats, subsets, batch sizes."""
import numpy as np
import pytest
from ffcv_loader import Loader, OrderOption
from ffcv_ops import IntDecoder

from ffcv_loader.testing import ids_file


def epoch_ids(loader):
    return [batch[0][:, 0].numpy().copy() for batch in loader]


@pytest.fixture(scope='module')
def ids_path(tmp_path_factory):
    return ids_file(str(tmp_path_factory.mktemp('orders') / 'ids.beton'), 1000)


@pytest.mark.parametrize('order', list(OrderOption))
def test_every_sample_once_per_epoch(ids_path, order):
    loader = Loader(ids_path, batch_size=64, num_workers=2, order=order, seed=3, drop_last=False)
    epochs = []
    for _ in range(3):
        ids = np.concatenate(epoch_ids(loader))
        assert np.array_equal(np.sort(ids), np.arange(1000))
        epochs.append(ids)
    if order is OrderOption.SEQUENTIAL:
        assert all(np.array_equal(e, np.arange(1000)) for e in epochs)
    else:
        assert not np.array_equal(epochs[0], epochs[1])
        assert not np.array_equal(epochs[0], np.arange(1000))


@pytest.mark.parametrize('order', list(OrderOption))
def test_indices_select_a_subset(ids_path, order):
    subset = np.random.default_rng(1).choice(1000, 300, replace=False)
    loader = Loader(ids_path, batch_size=50, num_workers=2, order=order, indices=subset, drop_last=False)
    for _ in range(2):
        ids = np.concatenate(epoch_ids(loader))
        assert np.array_equal(np.sort(ids), np.sort(subset))
    if order is OrderOption.SEQUENTIAL:
        assert np.array_equal(ids, subset)


def test_partial_batches_with_and_without_drop_last(ids_path):
    kept = Loader(ids_path, batch_size=300, num_workers=2, drop_last=False)
    sizes = [len(b) for b in epoch_ids(kept)]
    assert sizes == [300, 300, 300, 100] and len(kept) == 4
    dropped = Loader(ids_path, batch_size=300, num_workers=2, drop_last=True)
    sizes = [len(b) for b in epoch_ids(dropped)]
    assert sizes == [300, 300, 300] and len(dropped) == 3


def test_same_seed_same_order_other_seed_other_order(ids_path):
    a = np.concatenate(epoch_ids(Loader(ids_path, 100, num_workers=1, order=OrderOption.RANDOM, seed=5)))
    b = np.concatenate(epoch_ids(Loader(ids_path, 100, num_workers=2, order=OrderOption.RANDOM, seed=5)))
    c = np.concatenate(epoch_ids(Loader(ids_path, 100, num_workers=2, order=OrderOption.RANDOM, seed=6)))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_arguments_are_named(ids_path):
    with pytest.raises(ValueError, match='batch_size'):
        Loader(ids_path, batch_size=0)
    with pytest.raises(ValueError, match='num_workers'):
        Loader(ids_path, batch_size=4, num_workers='4')
    with pytest.raises(ValueError, match=r"order_kwargs \['group'\] are not arguments of QuasiRandom.*pages_per_group"):
        Loader(ids_path, batch_size=4, order=OrderOption.QUASI_RANDOM, order_kwargs={'group': 4})
    with pytest.raises(ValueError, match='outside'):
        Loader(ids_path, batch_size=4, indices=[0, 1000])
    with pytest.raises(ValueError, match='not a field'):
        Loader(ids_path, batch_size=4, pipelines={'idd': [IntDecoder()]})
    with pytest.raises(ValueError, match='order'):
        Loader(ids_path, batch_size=4, order='shuffled')
    with pytest.raises(RuntimeError, match='init_process_group'):
        Loader(ids_path, batch_size=4, distributed=True)


def test_num_workers_minus_one_follows_compiler_num_threads(ids_path):
    from ffcv_ops import Compiler
    import os
    assert Loader(ids_path, batch_size=8).num_workers == len(os.sched_getaffinity(0))
    try:
        Compiler.set_num_threads(3)
        assert Loader(ids_path, batch_size=8).num_workers == 3
        assert Loader(ids_path, batch_size=8, num_workers=1).num_workers == 1
    finally:
        Compiler.num_threads = None


def test_an_ffcv_10_style_order_is_built_from_the_loader(ids_path):
    from ffcv_loader import TraversalOrder

    class EvensFirst(TraversalOrder):
        def __init__(self, loader):
            super().__init__(loader)
            self.seen_batch_size = loader.batch_size

        def sample_order(self, epoch):
            ids = self.indices
            return np.concatenate([ids[ids % 2 == 0], ids[ids % 2 == 1]])

    loader = Loader(ids_path, batch_size=100, num_workers=2, order=EvensFirst, indices=np.arange(300))
    order = loader.traversal_order
    assert order.loader is loader and order.seed == loader.seed and order.seen_batch_size == 100
    ids = np.concatenate(epoch_ids(loader))
    assert np.array_equal(ids, np.r_[0:300:2, 1:300:2])
