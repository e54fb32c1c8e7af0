"""Traversal orders: coverage, determinism, distributed padding and dealing, quasi-random locality."""
import ast
import sys
import collections
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from ffcv_loader import orders
from ffcv_loader.orders import (ORDER_TYPES, OrderOption, QuasiRandom, Random, Sequential, TraversalOrder,
                                make_order)

ORDER_CLASSES = [Sequential, Random, QuasiRandom]


def build(cls, indices, seed=0, **kwargs):
    return cls(np.asarray(indices, dtype=np.int64), seed=seed, **kwargs)


def regular_pages(num_samples, per_page):
    """sample_pages of a file whose pages each hold ``per_page`` consecutive samples."""
    return np.arange(num_samples, dtype=np.int64) // per_page


def irregular_pages(num_samples, seed=0):
    """sample_pages with pages of 1 to 30 consecutive samples."""
    sizes = np.random.default_rng(seed).integers(1, 31, size=num_samples)
    return np.repeat(np.arange(num_samples), sizes)[:num_samples].astype(np.int64)


def max_open_pages(pages_in_order):
    """The largest number of pages started and not finished, over all points of the order."""
    pages_in_order = np.asarray(pages_in_order)
    if pages_in_order.size == 0:
        return 0
    _, first = np.unique(pages_in_order, return_index=True)
    _, last_reversed = np.unique(pages_in_order[::-1], return_index=True)
    last = pages_in_order.size - 1 - last_reversed
    delta = np.zeros(pages_in_order.size + 1, dtype=np.int64)
    np.add.at(delta, first, 1)
    np.add.at(delta, last, -1)       # a page is closed once its last sample is read
    return int(np.cumsum(delta).max())


def max_pages_per_window(pages_in_order, window):
    return max(len(set(pages_in_order[i:i + window].tolist()))
               for i in range(max(1, len(pages_in_order) - window + 1)))


def rank_orders(cls, indices, world_size, epoch=0, **kwargs):
    return [build(cls, indices, distributed=True, rank=rank, world_size=world_size, **kwargs)
            .sample_order(epoch) for rank in range(world_size)]


# ---------------------------------------------------------------------------------------- basics

def test_order_option_names_and_values():
    assert [(o.name, o.value) for o in OrderOption] == [('SEQUENTIAL', 1), ('RANDOM', 2), ('QUASI_RANDOM', 3)]
    assert ORDER_TYPES == {OrderOption.SEQUENTIAL: Sequential, OrderOption.RANDOM: Random,
                           OrderOption.QUASI_RANDOM: QuasiRandom}


def test_orders_module_imports_only_numpy_and_stdlib():
    tree = ast.parse(Path(orders.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split('.')[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or '').split('.')[0])
    assert imported - set(sys.stdlib_module_names) == {'numpy'}, imported


@pytest.mark.parametrize('cls', ORDER_CLASSES)
@pytest.mark.parametrize('num_samples', [1, 2, 7, 100, 1001])
def test_every_sample_once_per_epoch(cls, num_samples):
    order = build(cls, np.arange(num_samples), seed=3, batch_size=16,
                  sample_pages=regular_pages(num_samples, 10))
    assert len(order) == num_samples
    for epoch in range(4):
        result = order.sample_order(epoch)
        assert result.dtype == np.int64 and result.ndim == 1
        assert np.array_equal(np.sort(result), np.arange(num_samples))


@pytest.mark.parametrize('cls', ORDER_CLASSES)
def test_empty_indices_give_empty_orders(cls):
    for indices in ([], np.empty(0, dtype=np.int64), np.empty(0)):
        for kwargs in ({}, dict(distributed=True, rank=1, world_size=3, batch_size=4)):
            order = cls(indices, seed=0, sample_pages=np.zeros(5, dtype=np.int64), **kwargs)
            result = order.sample_order(0)
            assert result.dtype == np.int64 and result.shape == (0,) and len(order) == 0


def test_sequential_keeps_the_given_order():
    indices = np.array([9, 3, 3, 0, 7, 12, 5])
    order = Sequential(indices, seed=0)
    for epoch in range(3):
        assert order.sample_order(epoch).tolist() == indices.tolist()


@pytest.mark.parametrize('cls', ORDER_CLASSES)
def test_subsets_of_the_dataset(cls):
    rng = np.random.default_rng(5)
    dataset_size = 5000
    subset = rng.choice(dataset_size, size=777, replace=False)       # unsorted, sparse
    order = build(cls, subset, seed=1, batch_size=32, sample_pages=regular_pages(dataset_size, 20))
    for epoch in range(3):
        result = order.sample_order(epoch)
        assert sorted(result.tolist()) == sorted(subset.tolist())
    if cls is Sequential:
        assert result.tolist() == subset.tolist()


@pytest.mark.parametrize('cls', ORDER_CLASSES)
def test_accepts_lists_and_other_integer_dtypes_without_touching_the_input(cls):
    for indices in ([4, 1, 3], np.array([4, 1, 3], dtype=np.uint32), np.array([4, 1, 3], dtype=np.int16)):
        before = np.array(indices).copy()
        result = cls(indices, seed=0, sample_pages=np.arange(5)).sample_order(0)
        assert result.dtype == np.int64 and sorted(result.tolist()) == [1, 3, 4]
        assert np.array_equal(np.array(indices), before)


# ----------------------------------------------------------------------------------- randomness

@pytest.mark.parametrize('cls', [Random, QuasiRandom])
def test_deterministic_in_seed_and_epoch(cls):
    pages = regular_pages(2000, 25)

    def run(seed, epoch):
        return build(cls, np.arange(2000), seed=seed, batch_size=64, sample_pages=pages).sample_order(epoch)

    np.random.seed(1)
    first = run(7, 2)
    np.random.seed(2)                        # global numpy state plays no part
    np.random.random(10)
    assert np.array_equal(run(7, 2), first)
    reused = build(cls, np.arange(2000), seed=7, batch_size=64, sample_pages=pages)
    assert np.array_equal(reused.sample_order(5), run(7, 5))     # epochs in any order, any object
    assert np.array_equal(reused.sample_order(2), first)
    epochs = [run(7, epoch) for epoch in range(5)]
    seeds = [run(seed, 2) for seed in range(5)]
    for a, b in itertools.combinations(epochs, 2):
        assert not np.array_equal(a, b)
    for a, b in itertools.combinations(seeds, 2):
        assert not np.array_equal(a, b)
    assert not np.array_equal(first, np.arange(2000))


def test_random_and_quasi_random_differ_for_the_same_seed():
    a = Random(np.arange(500), seed=4).sample_order(0)
    b = QuasiRandom(np.arange(500), seed=4).sample_order(0)       # no pages: also a full shuffle
    assert not np.array_equal(a, b)


@pytest.mark.parametrize('cls', [Random, QuasiRandom])
def test_permutations_are_uniform(cls):
    # 4 samples, each its own page: all 24 permutations should come about equally often.
    order = cls(np.arange(4), seed=11, sample_pages=np.arange(4))
    counts = collections.Counter(tuple(order.sample_order(epoch).tolist()) for epoch in range(2400))
    assert len(counts) == 24
    assert min(counts.values()) > 60 and max(counts.values()) < 145, counts


def test_random_distributed_ranks_share_the_epoch_permutation():
    # the global order is the same on every rank: dealing it back gives the non-distributed one
    indices = np.arange(60)
    ranks = rank_orders(Random, indices, 3, epoch=4, seed=9)
    interleaved = np.stack(ranks, axis=1).reshape(-1)
    assert np.array_equal(interleaved, Random(indices, seed=9).sample_order(4))


# ---------------------------------------------------------------------------------- distributed

@pytest.mark.parametrize('cls', ORDER_CLASSES)
@pytest.mark.parametrize('world_size', [1, 2, 3])
@pytest.mark.parametrize('num_samples', [0, 1, 2, 5, 6, 7, 100, 101])
def test_distributed_covers_every_sample_with_documented_padding(cls, world_size, num_samples):
    rng = np.random.default_rng(num_samples)
    indices = rng.choice(1000, size=num_samples, replace=False)
    pages = regular_pages(1000, 3)
    per_rank = math.ceil(num_samples / world_size)
    padding = per_rank * world_size - num_samples
    for epoch in range(3):
        ranks = rank_orders(cls, indices, world_size, epoch=epoch, seed=2, batch_size=4, sample_pages=pages)
        assert [len(r) for r in ranks] == [per_rank] * world_size
        everything = np.concatenate(ranks)
        assert set(everything.tolist()) == set(indices.tolist())
        counts = collections.Counter(everything.tolist())
        assert sum(counts.values()) == num_samples + padding
        assert sum(c - 1 for c in counts.values()) == padding and padding < world_size
        assert all(c <= 1 + math.ceil(padding / max(num_samples, 1)) for c in counts.values())


def test_distributed_padding_repeats_the_first_elements_of_the_global_order():
    indices = np.array([10, 11, 12, 13, 14])
    ranks = rank_orders(Sequential, indices, 3)
    assert [r.tolist() for r in ranks] == [[10, 13], [11, 14], [12, 10]]
    ranks = rank_orders(Sequential, indices, 2)
    assert [r.tolist() for r in ranks] == [[10, 12, 14], [11, 13, 10]]
    # fewer samples than ranks: the order is repeated cyclically, like DistributedSampler
    assert [r.tolist() for r in rank_orders(Sequential, [7, 8], 5)] == [[7], [8], [7], [8], [7]]
    for seed in range(5):
        ranks = rank_orders(Random, np.arange(7), 3, seed=seed)
        padded = np.stack(ranks, axis=1).reshape(-1)
        assert np.array_equal(padded[7:], padded[:2])


@pytest.mark.parametrize('cls', ORDER_CLASSES)
def test_world_size_one_is_not_distributed(cls):
    kwargs = dict(seed=6, batch_size=8, sample_pages=regular_pages(300, 7))
    plain = build(cls, np.arange(300), **kwargs).sample_order(1)
    one = build(cls, np.arange(300), distributed=True, world_size=1, **kwargs)
    assert np.array_equal(one.sample_order(1), plain)
    # rank and world_size are ignored unless distributed
    assert np.array_equal(build(cls, np.arange(300), rank=2, world_size=4, **kwargs).sample_order(1), plain)


@pytest.mark.parametrize('cls', ORDER_CLASSES)
@pytest.mark.parametrize('world_size, num_samples, batch_size',
                         [(2, 101, 8), (3, 100, 8), (3, 31, 4), (2, 7, 3), (3, 20, 7), (3, 23, 4),
                          (2, 15, 8)])
def test_drop_last_after_padding(cls, world_size, num_samples, batch_size):
    """Ranks drop the same partial batch; when there is one, it holds all the padded repeats."""
    ranks = rank_orders(cls, np.arange(num_samples), world_size, epoch=1, seed=3, batch_size=batch_size,
                        drop_last=True, sample_pages=regular_pages(num_samples, 2))
    per_rank = len(ranks[0])
    padding = per_rank * world_size - num_samples
    assert padding > 0
    kept = np.concatenate([r[:per_rank // batch_size * batch_size] for r in ranks])
    repeats = kept.size - np.unique(kept).size
    assert repeats == (0 if per_rank % batch_size else padding)


# ----------------------------------------------------------------------------------- quasi-random

def test_quasi_random_locality_on_regular_pages():
    per_page, batch_size, group = 10, 32, 4        # a group holds 40 >= batch_size samples
    pages = regular_pages(1000, per_page)
    order = QuasiRandom(np.arange(1000), seed=0, batch_size=batch_size, sample_pages=pages,
                        pages_per_group=group)
    assert order.group_pages == group
    for epoch in range(3):
        result = order.sample_order(epoch)
        assert np.array_equal(np.sort(result), np.arange(1000))
        in_order = pages[result]
        assert max_open_pages(in_order) <= group
        assert max_pages_per_window(in_order, batch_size) <= 2 * group
        # random, not just page by page: pages are shuffled and so are samples within groups
        assert not np.all(np.diff(in_order) >= 0)
        assert not np.all(np.diff(result[:per_page * group]) > 0)
    # the checks above can fail: a full shuffle breaks both bounds
    shuffled = pages[Random(np.arange(1000), seed=0).sample_order(0)]
    assert max_open_pages(shuffled) > group and max_pages_per_window(shuffled, batch_size) > 2 * group


@pytest.mark.parametrize('group', [1, 3, 8])
def test_quasi_random_open_pages_on_irregular_pages_and_subsets(group):
    pages = irregular_pages(3000, seed=group)
    subset = np.random.default_rng(group).choice(3000, size=1200, replace=False)
    order = QuasiRandom(subset, seed=group, batch_size=16, sample_pages=pages, pages_per_group=group)
    assert order.num_pages == np.unique(pages[subset]).size
    for epoch in range(3):
        result = order.sample_order(epoch)
        assert sorted(result.tolist()) == sorted(subset.tolist())
        assert max_open_pages(pages[result]) <= group


def test_quasi_random_pages_of_a_group_are_visited_together():
    pages = regular_pages(600, 6)                  # 100 pages
    order = QuasiRandom(np.arange(600), seed=2, sample_pages=pages, pages_per_group=5)
    in_order = pages[order.sample_order(0)]
    for start in range(0, 600, 30):                # each stretch of 30 samples is 5 whole pages
        stretch = in_order[start:start + 30]
        assert len(set(stretch.tolist())) == 5
        assert all(np.sum(stretch == p) == 6 for p in set(stretch.tolist()))


def test_quasi_random_default_group_size():
    def group_for(batch_size, per_page, num_samples=30000):
        return QuasiRandom(np.arange(num_samples), seed=0, batch_size=batch_size,
                           sample_pages=regular_pages(num_samples, per_page)).group_pages

    assert group_for(256, 75) == 8                 # ceil(512 / 75) = 7, at least 8
    assert group_for(1024, 75) == 28               # about two batches per group
    assert group_for(10000, 75) == 64              # at most 64
    assert group_for(512, 1) == 64

    class Wide(QuasiRandom):
        pages_per_group = 3

    assert Wide(np.arange(100), seed=0, sample_pages=regular_pages(100, 5)).group_pages == 3
    made = make_order(Wide, np.arange(100), seed=0, distributed=False, rank=0, world_size=1, batch_size=4,
                      drop_last=False, sample_pages=regular_pages(100, 5))
    assert isinstance(made, Wide) and made.group_pages == 3


@pytest.mark.parametrize('world_size, num_samples, batch_size', [(2, 1000, 32), (3, 1000, 32), (3, 999, 10),
                                                                 (2, 64, 32), (3, 5, 4), (3, 7, 2)])
def test_quasi_random_distributed_deals_blocks(world_size, num_samples, batch_size):
    pages = regular_pages(num_samples, 10)
    kwargs = dict(seed=8, batch_size=batch_size, sample_pages=pages, pages_per_group=4)
    global_order = QuasiRandom(np.arange(num_samples), **kwargs).sample_order(3)
    per_rank = math.ceil(num_samples / world_size)
    padded = np.resize(global_order, per_rank * world_size)
    rounds = per_rank // batch_size                # full batches per rank
    chunk = per_rank - rounds * batch_size         # the partial last batch
    head = rounds * batch_size * world_size
    for rank in range(world_size):
        mine = QuasiRandom(np.arange(num_samples), distributed=True, rank=rank, world_size=world_size,
                           **kwargs).sample_order(3)
        # positions in the padded global order: full batches are blocks k * W + rank, then a chunk
        positions = [(k * world_size + rank) * batch_size + j
                     for k in range(rounds) for j in range(batch_size)]
        positions += [head + rank * chunk + j for j in range(chunk)]
        positions = np.array(positions, dtype=np.int64)
        assert np.array_equal(mine, padded[positions])
        assert np.all(np.diff(positions) > 0)
        # padded repeats only at the end of a rank's order; locality holds for the rest
        real = positions < num_samples
        assert np.all(real[:real.sum()])
        assert max_open_pages(pages[mine[real]]) <= 4


# ------------------------------------------------------------------------------ make_order, custom

MAKE_KWARGS = dict(seed=0, distributed=False, rank=0, world_size=1, batch_size=4, drop_last=False,
                   sample_pages=None)


@pytest.mark.parametrize('spec, cls', [(OrderOption.SEQUENTIAL, Sequential), (OrderOption.RANDOM, Random),
                                       (OrderOption.QUASI_RANDOM, QuasiRandom), ('random', Random),
                                       ('RANDOM', Random), ('Sequential', Sequential),
                                       ('quasi_random', QuasiRandom), ('Quasi-Random', QuasiRandom),
                                       (Random, Random), (QuasiRandom, QuasiRandom)])
def test_make_order_accepts_options_names_and_classes(spec, cls):
    order = make_order(spec, np.arange(10), **MAKE_KWARGS)
    assert type(order) is cls
    assert sorted(order.sample_order(0).tolist()) == list(range(10))


def test_make_order_passes_every_argument():
    order = make_order('quasi_random', [3, 1, 2], seed=5, distributed=True, rank=1, world_size=2,
                       batch_size=2, drop_last=True, sample_pages=np.arange(4))
    assert (order.seed, order.distributed, order.rank, order.world_size) == (5, True, 1, 2)
    assert (order.batch_size, order.drop_last) == (2, True)
    assert order.indices.tolist() == [3, 1, 2] and order.sample_pages.tolist() == [0, 1, 2, 3]


class NotAnOrder:
    pass


@pytest.mark.parametrize('spec', ['shuffle', '', 2, None, OrderOption, TraversalOrder, NotAnOrder,
                                  Random(np.arange(3), seed=0)])
def test_make_order_rejects_unknown_orders(spec):
    with pytest.raises(ValueError) as info:
        make_order(spec, np.arange(10), **MAKE_KWARGS)
    message = str(info.value)
    assert repr(spec) in message
    for name in ('SEQUENTIAL', 'RANDOM', 'QUASI_RANDOM', 'TraversalOrder'):
        assert name in message


def test_custom_order_as_documented():
    class Reversed(TraversalOrder):
        def sample_order(self, epoch):
            return self.shard(self.indices[::-1])

    kwargs = dict(MAKE_KWARGS, distributed=True, world_size=2)
    assert make_order(Reversed, [0, 1, 2, 3, 4], **dict(kwargs, rank=0)).sample_order(0).tolist() == [4, 2, 0]
    assert make_order(Reversed, [0, 1, 2, 3, 4], **dict(kwargs, rank=1)).sample_order(0).tolist() == [3, 1, 4]
    assert len(make_order(Reversed, [0, 1, 2, 3, 4], **dict(kwargs, rank=1))) == 3

    class Seeded(TraversalOrder):
        def sample_order(self, epoch):
            return self.indices[self.epoch_rng(epoch).permutation(len(self.indices))]

    a, b = Seeded(np.arange(50), seed=1), Seeded(np.arange(50), seed=1)
    assert np.array_equal(a.sample_order(3), b.sample_order(3))
    assert not np.array_equal(a.sample_order(3), a.sample_order(4))
    with pytest.raises(TypeError):
        TraversalOrder(np.arange(3), seed=0)         # abstract


# ------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize('cls', ORDER_CLASSES)
@pytest.mark.parametrize('kwargs, words', [
    (dict(world_size=0), 'world_size'), (dict(world_size=-2), 'world_size'),
    (dict(world_size=2.0), 'world_size'),
    (dict(rank=-1, world_size=2), 'rank'), (dict(rank=2, world_size=2), 'rank'),
    (dict(rank=5, world_size=2, distributed=True), 'rank'),
    (dict(batch_size=-1), 'batch_size'), (dict(batch_size=0), 'batch_size'),
    (dict(batch_size='8'), 'batch_size'),
    (dict(seed=None), 'seed'), (dict(seed=-1), 'seed'), (dict(seed=1.5), 'seed'), (dict(seed=True), 'seed'),
    (dict(indices=np.array([0.0, 1.0])), 'indices'), (dict(indices=[0, 1.5]), 'indices'),
    (dict(indices=['0', '1']), 'indices'), (dict(indices=np.array([True, False])), 'indices'),
    (dict(indices=np.zeros((2, 2), dtype=np.int64)), 'indices'), (dict(indices=3), 'indices'),
    (dict(indices=[0, -1]), 'negative'), (dict(indices=np.array([2**63], dtype=np.uint64)), 'int64'),
    (dict(sample_pages=np.arange(3)), 'sample_pages'),
    (dict(sample_pages=np.zeros(10, dtype=np.float32)), 'sample_pages'),
    (dict(sample_pages=np.zeros((10, 1), dtype=np.int64)), 'sample_pages'),
])
def test_bad_arguments(cls, kwargs, words):
    arguments = dict(indices=np.arange(5), seed=0, sample_pages=np.zeros(10, dtype=np.int64))
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=words):
        cls(arguments.pop('indices'), **arguments)


@pytest.mark.parametrize('cls', ORDER_CLASSES)
@pytest.mark.parametrize('epoch', [-1, 1.5, None, '2'])
def test_bad_epochs(cls, epoch):
    with pytest.raises(ValueError, match='epoch'):
        cls(np.arange(5), seed=0).sample_order(epoch)


def test_numpy_integers_are_integers():
    order = Random(np.arange(5), seed=np.int64(3), rank=np.int32(1), world_size=np.uint8(2), distributed=True,
                   batch_size=np.int16(2))
    assert order.seed == 3 and order.rank == 1 and order.world_size == 2 and order.batch_size == 2
    assert np.array_equal(order.sample_order(np.int64(1)), order.sample_order(1))
