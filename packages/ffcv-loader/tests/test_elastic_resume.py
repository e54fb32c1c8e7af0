"""Resuming with another number of ranks (docs/elastic-resume.md), in one process.

Ranks are played one after the other by loaders made while ``torch.distributed`` reports the
rank and world size wanted; the arithmetic (``ffcv_loader.elastic``) is checked on its own over
many sizes. The runs with real processes are in test_elastic_distributed.py.
"""
import itertools
from unittest import mock

import numpy as np
import pytest
import torch.distributed as dist
from ffcv_loader import Loader, OrderOption
from ffcv_loader.elastic import Stage, remaining_positions, split_remainder
from ffcv_loader.loader_state import read_resume_point
from ffcv_loader.orders import QuasiRandom, Random, Sequential, TraversalOrder, deals_global_order, make_order
from ffcv_loader.testing import ids_file

N = 203   # not a multiple of the batch sizes or world sizes used
BATCH = 10


@pytest.fixture(scope='module')
def ids(tmp_path_factory):
    return ids_file(str(tmp_path_factory.mktemp('elastic') / 'ids.beton'), N)


def make(path, rank, world_size, *, order=OrderOption.RANDOM, drop_last=False, batch_size=BATCH, seed=5,
         **kwargs):
    """Rank ``rank`` of ``world_size``'s loader (``world_size`` 0: not distributed)."""
    if world_size == 0:
        return Loader(path, batch_size=batch_size, num_workers=1, order=order, drop_last=drop_last, seed=seed,
                      **kwargs)
    with mock.patch.object(dist, 'is_available', return_value=True), \
            mock.patch.object(dist, 'is_initialized', return_value=True), \
            mock.patch.object(dist, 'get_rank', return_value=rank), \
            mock.patch.object(dist, 'get_world_size', return_value=world_size):
        return Loader(path, batch_size=batch_size, num_workers=1, order=order, distributed=True,
                      drop_last=drop_last, seed=seed, **kwargs)


def ranks(path, world_size, **kwargs):
    return [make(path, rank, world_size, **kwargs) for rank in range(max(world_size, 1))]


def ids_of(batch):
    return batch[0][:, 0].tolist()


def take(loaders, counts):
    """Each loader's next ``counts[r]`` batches of its current epoch (its iterator is left
    open, as in training); the loaders' states after that, and the sample ids taken."""
    taken = []
    for loader, count in zip(loaders, counts):
        iterator = iter(loader)
        for _ in range(count):
            taken.append(ids_of(next(iterator)))
        loader._kept_open = iterator
    return [loader.state_dict() for loader in loaders], taken


def rest_of_epoch(loaders):
    """Every loader's batches of one epoch, as lists of ids (checks lockstep)."""
    batches = [[ids_of(batch) for batch in loader] for loader in loaders]
    assert len({len(rank_batches) for rank_batches in batches}) == 1, "ranks out of lockstep"
    return batches


def epoch_samples(path, world_size, epoch=0, **kwargs):
    """The ids the ranks of ``world_size`` yield in ``epoch`` of the normal order, per rank."""
    per_rank = []
    for loader in ranks(path, world_size, **kwargs):
        loader.load_state_dict(dict(loader.state_dict(), epoch=epoch))
        per_rank.append([ids_of(batch) for batch in loader])
    return per_rank


def flat(batches):
    return [i for batch in batches for i in batch]


def assert_each_once(before, after, expected_set):
    """The ids of the batches ``before`` and ``after`` a resume are ``expected_set``, each
    exactly once (``before`` may hold the padding repeat of the old ranks' normal order when
    one of them reached it: that is the old run's; nothing after the resume is seen twice).
    Returns how many ids there were."""
    before, after = flat(before), flat(after)
    counts = np.bincount(before + after, minlength=N)
    twice = np.flatnonzero(counts > 1).tolist()
    assert not twice or (len(before) != len(set(before)) and len(after) == len(set(after))
                         and not set(before) & set(after)), f"ids seen twice: {twice}"
    everything = set(before) | set(after)
    assert everything == set(expected_set), (sorted(set(expected_set) - everything),
                                             sorted(everything - set(expected_set)))
    return len(before) + len(after)


# ------------------------------------------------------------------ the arithmetic


@pytest.mark.parametrize('cls', [Sequential, Random, QuasiRandom])
def test_dealt_positions_are_what_each_rank_gets(cls):
    class Mirrored(cls):
        def shard(self, order):          # another dealing: the generic dealt_positions
            return super().shard(order[::-1].copy())

    sizes = itertools.product((cls, Mirrored), (0, 1, 5, 64, 203), (1, 2, 3, 7), (1, 4, 10))
    for kind, n, world_size, batch_size in sizes:
        pages = np.arange(n) // 7 if cls is QuasiRandom else None
        orders = [kind(np.arange(n) * 3, seed=4, distributed=True, rank=rank, world_size=world_size,
                       batch_size=batch_size, sample_pages=pages if pages is None else np.repeat(pages, 3))
                  for rank in range(world_size)]
        dealt = orders[0].dealt_positions(world_size)
        assert dealt.shape == (world_size, -(-n // world_size))
        global_order = orders[0].global_order(2)
        for rank, order in enumerate(orders):
            np.testing.assert_array_equal(global_order[dealt[rank]], order.sample_order(2))
        assert deals_global_order(orders[0])      # a dealing of its own, by position, is fine


def test_split_remainder_gives_equal_batch_counts_and_every_position_once():
    for count, world_size, batch_size in itertools.product(range(0, 61), range(1, 6), range(1, 7)):
        split = split_remainder(count, world_size, batch_size)
        per_round = world_size * batch_size
        assert split.num_batches == -(-count // per_round)
        rows = [split.rank_batches(rank) for rank in range(world_size)]
        assert {len(r) for r in rows} == {split.num_batches}
        if count == 0:
            continue
        sizes = split.piece_sizes
        assert sizes.min() >= 1 and sizes.max() <= batch_size          # no empty batch, none too large
        assert (sizes[:-2] == batch_size).all()                        # full but in the last two rounds
        assert sizes.max(axis=1).tolist() == sorted(sizes.max(axis=1).tolist(), reverse=True)
        everything = np.concatenate([np.concatenate(r) for r in rows])
        assert everything.size == split.padded_length
        assert set(everything.tolist()) == set(range(count))
        repeats = split.padded_length - count
        if count >= world_size and batch_size > 1:
            assert repeats == 0
        else:
            assert 0 <= repeats < world_size
        # consumed: what the first batches of each rank hold
        rng = np.random.default_rng(count * 100 + world_size * 10 + batch_size)
        taken = rng.integers(0, split.num_batches + 1, size=world_size).tolist()
        expected = set()
        for rank, how_many in enumerate(taken):
            for batch in rows[rank][:how_many]:
                expected |= set(batch.tolist())
        assert set(split.consumed(taken).tolist()) == expected


def rank_batches(order_class, n, world_size, rank, epoch, batch_size, drop_last, pages):
    order = make_order(order_class, np.arange(n), seed=8, distributed=True, rank=rank, world_size=world_size,
                       batch_size=batch_size, sample_pages=pages)
    samples = order.sample_order(epoch)
    count = len(samples) // batch_size if drop_last else -(-len(samples) // batch_size)
    return [samples[i * batch_size:(i + 1) * batch_size].tolist() for i in range(count)], order


def test_remaining_positions_over_many_sizes():
    """Stages of N, M, M2 ranks: what each new rank is dealt, with what the old ranks
    consumed, is the epoch's samples each once (property over random sizes)."""
    rng = np.random.default_rng(0)
    for _ in range(400):
        n = int(rng.integers(1, 120))
        batch_size = int(rng.integers(1, 9))
        old, new, last = (int(x) for x in rng.integers(1, 6, 3))
        drop_last = bool(rng.integers(2))
        kind = [Sequential, Random, QuasiRandom][int(rng.integers(3))]
        pages = np.arange(n) // 5
        old_batches = [rank_batches(kind, n, old, r, 3, batch_size, drop_last, pages)[0] for r in range(old)]
        order = rank_batches(kind, n, old, 0, 3, batch_size, drop_last, pages)[1]
        global_order = order.global_order(3)
        epoch_set = set(flat([flat(b) for b in old_batches]))
        per_rank = len(old_batches[0])
        lockstep = bool(rng.integers(2))
        counts = ([int(rng.integers(0, per_rank + 1))] * old if lockstep
                  else rng.integers(0, per_rank + 1, size=old).tolist())
        consumed = set(flat([flat(b[:c]) for b, c in zip(old_batches, counts)]))
        stages = [Stage(old, tuple(counts))]
        remaining = remaining_positions(n, batch_size, drop_last, stages, order.dealt_positions)
        assert set(global_order[remaining].tolist()) == epoch_set - consumed
        assert len(set(global_order[remaining].tolist())) == remaining.size
        # the next stage: new ranks, each a share; some batches consumed, then a last stage
        split = split_remainder(remaining.size, new, batch_size)
        new_batches = [[global_order[remaining[rows]].tolist() for rows in split.rank_batches(r)]
                       for r in range(new)]
        taken = rng.integers(0, split.num_batches + 1, size=new).tolist()
        consumed |= set(flat([flat(b[:c]) for b, c in zip(new_batches, taken)]))
        stages.append(Stage(new, tuple(taken)))
        remaining = remaining_positions(n, batch_size, drop_last, stages, order.dealt_positions)
        assert set(global_order[remaining].tolist()) == epoch_set - consumed
        final = split_remainder(remaining.size, last, batch_size)
        yielded = flat([flat(global_order[remaining[rows]].tolist() for rows in final.rank_batches(r))
                        for r in range(last)])
        assert set(yielded) == epoch_set - consumed
        if remaining.size >= last and batch_size > 1:
            assert len(yielded) == len(set(yielded))


def test_a_stage_cannot_have_consumed_more_than_it_had():
    order = Random(np.arange(50), seed=1)
    with pytest.raises(ValueError, match=r"rank 1 of 2 is said to have consumed 4 batches .* has 3 batches"):
        remaining_positions(50, 10, False, [Stage(2, (1, 4))], order.dealt_positions)
    with pytest.raises(ValueError, match='needs a batch count per rank'):
        Stage(3, (1, 2))


# ------------------------------------------------------------------ loaders


@pytest.mark.parametrize('order', list(OrderOption))
@pytest.mark.parametrize('drop_last', [False, True])
@pytest.mark.parametrize('old, new', [(3, 2), (2, 3), (3, 0), (0, 3), (2, 2)])
def test_the_rest_of_the_epoch_once_then_the_normal_order(ids, order, drop_last, old, new):
    kwargs = dict(order=order, drop_last=drop_last)
    before = ranks(ids, old, **kwargs)
    for loader in before:                # epoch 0 complete, then 2 batches of epoch 1
        [ids_of(b) for b in loader]
    states, consumed = take(before, [2] * len(before))
    assert {(s['epoch'], s['batch'], s['version']) for s in states} == {(1, 2, 1)}
    after = ranks(ids, new, **kwargs)
    for loader in after:
        loader.load_state_dict(states[0])
    rest = rest_of_epoch(after)
    uninterrupted = epoch_samples(ids, old, epoch=1, **kwargs)
    if new == old:   # the same world size: exactly the batches of the uninterrupted run, padding included
        assert [b[2:] for b in uninterrupted] == rest
    else:
        expected = set(flat(flat(uninterrupted)))
        assert assert_each_once(consumed, flat(rest), expected) == len(expected)
        assert len(expected) == (N if not drop_last else len(flat(flat(uninterrupted))))
    following = rest_of_epoch(after)
    assert following == epoch_samples(ids, new, epoch=2, **kwargs)
    assert {loader.state_dict()['epoch'] for loader in after} == {3}


@pytest.mark.parametrize('order', list(OrderOption))
@pytest.mark.parametrize('drop_last', [False, True])
def test_a_state_in_a_resumed_epoch_resumes_again(ids, order, drop_last):
    """3 ranks -> 2 ranks -> 3 ranks in one epoch, a state from rank 0 each time."""
    kwargs = dict(order=order, drop_last=drop_last)
    expected = set(flat(flat(epoch_samples(ids, 3, **kwargs))))
    states, first = take(ranks(ids, 3, **kwargs), [2, 2, 2])
    middle = ranks(ids, 2, **kwargs)
    for loader in middle:
        loader.load_state_dict(states[0])
    states, second = take(middle, [3, 3])
    assert states[0]['version'] == 2 and states[0]['world_size'] == 2 and states[0]['batch'] == 3
    assert states[0]['resumed_from'] == [{'world_size': 3, 'batches': [2, 2, 2]}]
    last = ranks(ids, 3, **kwargs)
    for loader in last:
        loader.load_state_dict(states[1])      # any rank's state, in lockstep
    rest = rest_of_epoch(last)
    assert assert_each_once(first + second, flat(rest), expected) == len(expected)
    # the same world size continues the resumed stage exactly
    again = ranks(ids, 2, **kwargs)
    for loader in again:
        loader.load_state_dict(states[0])
    uninterrupted = ranks(ids, 2, **kwargs)
    for loader in uninterrupted:
        loader.load_state_dict(take(ranks(ids, 3, **kwargs), [2, 2, 2])[0][0])
    assert rest_of_epoch(again) == [b[3:] for b in rest_of_epoch(uninterrupted)]
    assert {loader.state_dict()['version'] for loader in again} == {1}     # the epoch is over
    assert rest_of_epoch(last) == epoch_samples(ids, 3, epoch=1, **kwargs)


@pytest.mark.parametrize('order', list(OrderOption))
def test_a_list_of_every_ranks_state_is_exact_out_of_lockstep(ids, order):
    kwargs = dict(order=order, drop_last=False)
    expected = set(range(N))
    states, consumed = take(ranks(ids, 3, **kwargs), [1, 4, 2])
    after = ranks(ids, 2, **kwargs)
    for loader in after:
        loader.load_state_dict(states)
    assert assert_each_once(consumed, flat(rest_of_epoch(after)), expected) == N
    # a rank that finished the epoch is already at the next one
    finishing = ranks(ids, 3, **kwargs)
    states, consumed = take(finishing[:2], [3, 5])
    consumed += [ids_of(b) for b in finishing[2]]
    states.append(finishing[2].state_dict())
    assert states[2]['epoch'] == 1 and states[2]['batch'] == 0
    after = ranks(ids, 2, **kwargs)
    for loader in after:
        loader.load_state_dict(states)
    assert assert_each_once(consumed, flat(rest_of_epoch(after)), expected) >= N   # rank 2 had the repeat
    # the same world size, out of lockstep: the rest dealt again, evenly
    states, consumed = take(ranks(ids, 3, **kwargs), [0, 3, 1])
    after = ranks(ids, 3, **kwargs)
    for loader in after:
        loader.load_state_dict(states)
    assert assert_each_once(consumed, flat(rest_of_epoch(after)), expected) == N


def test_a_list_of_lockstep_states_is_the_single_state(ids):
    states, _ = take(ranks(ids, 3, order=OrderOption.QUASI_RANDOM), [2, 2, 2])
    one, every = ranks(ids, 2, order=OrderOption.QUASI_RANDOM), ranks(ids, 2, order=OrderOption.QUASI_RANDOM)
    for a, b in zip(one, every):
        a.load_state_dict(states[2])
        b.load_state_dict(list(reversed(states)))
    assert rest_of_epoch(one) == rest_of_epoch(every)


def test_a_state_at_the_start_of_an_epoch_gives_the_normal_order_of_the_new_world(ids):
    states, _ = take(ranks(ids, 3), [0, 0, 0])
    after = ranks(ids, 2)
    for loader in after:
        loader.load_state_dict(dict(states[0], epoch=4))
    assert rest_of_epoch(after) == epoch_samples(ids, 2, epoch=4)
    assert after[0].state_dict()['version'] == 1


def test_the_sizes_of_the_resumed_batches(ids):
    """203 samples, 3 ranks, 2 batches of 10 each taken: 143 left. For 2 ranks: 7 full rounds
    (140) and a last round of 3 (2 + 1). For 7 ranks: 2 full rounds would leave 3 < 7 samples,
    so the last two rounds share 73: 37 (6, 6, 5, 5, 5, 5, 5) and 36 (6, 5, 5, 5, 5, 5, 5)."""
    states, _ = take(ranks(ids, 3, order=OrderOption.SEQUENTIAL), [2, 2, 2])
    two = ranks(ids, 2, order=OrderOption.SEQUENTIAL)
    for loader in two:
        loader.load_state_dict(states[0])
    sizes = [[len(b) for b in rank] for rank in rest_of_epoch(two)]
    assert sizes == [[10] * 7 + [2], [10] * 7 + [1]]
    seven = ranks(ids, 7, order=OrderOption.SEQUENTIAL)
    for loader in seven:
        loader.load_state_dict(states[0])
    sizes = [[len(b) for b in rank] for rank in rest_of_epoch(seven)]
    assert sizes == [[10, 6, 6], [10, 6, 5]] + [[10, 5, 5]] * 5
    # drop_last=True: the 3 ranks' epoch is 180 samples, 120 left; 2 ranks: 6 full rounds
    states, _ = take(ranks(ids, 3, order=OrderOption.SEQUENTIAL, drop_last=True), [2, 2, 2])
    two = ranks(ids, 2, order=OrderOption.SEQUENTIAL, drop_last=True)
    for loader in two:
        loader.load_state_dict(states[0])
    assert [[len(b) for b in rank] for rank in rest_of_epoch(two)] == [[10] * 6] * 2


def test_fewer_samples_left_than_ranks_are_repeated_so_no_batch_is_empty(tmp_path):
    path = ids_file(str(tmp_path / 'five.beton'), 5)
    state = make(path, 0, 0, order=OrderOption.SEQUENTIAL, batch_size=2).state_dict()
    state.update(batch=2)                         # 4 of 5 samples consumed
    after = ranks(path, 3, order=OrderOption.SEQUENTIAL, batch_size=2)
    for loader in after:
        loader.load_state_dict(state)
    assert rest_of_epoch(after) == [[[4]], [[4]], [[4]]]


def test_refusals_name_what_differs(ids):
    states, _ = take(ranks(ids, 3), [2, 2, 2])
    with pytest.raises(ValueError, match=r"batch_size 10 \(this loader: 16\)"):
        make(ids, 0, 2, batch_size=16).load_state_dict(states[0])
    with pytest.raises(ValueError, match=r"drop_last False \(this loader: True\)"):
        make(ids, 0, 2, drop_last=True).load_state_dict(states[0])
    with pytest.raises(ValueError, match=r"order 'ffcv_loader.orders.Random' \(this loader: "
                                         r"'ffcv_loader.orders.QuasiRandom'\)"):
        make(ids, 0, 2, order=OrderOption.QUASI_RANDOM).load_state_dict(states[0])
    with pytest.raises(ValueError, match=r"num_samples 203 \(this loader: 100\)"):
        make(ids, 0, 2, indices=np.arange(100)).load_state_dict(states[0])
    with pytest.raises(ValueError, match=r"missing ranks \[1\]"):
        make(ids, 0, 2).load_state_dict([states[0], states[2]])
    with pytest.raises(ValueError, match=r"differ in seed: 5, 6"):
        make(ids, 0, 2).load_state_dict([states[0], dict(states[1], seed=6), states[2]])
    with pytest.raises(ValueError, match=r"has 7 batches per rank"):
        make(ids, 0, 2).load_state_dict(dict(states[0], batch=9))
    with pytest.raises(ValueError, match=r"version 2 needs 'resumed_from'"):
        make(ids, 0, 2).load_state_dict(dict(states[0], version=2))
    with pytest.raises(ValueError, match="non-empty list"):
        make(ids, 0, 2).load_state_dict([])


def test_an_order_that_makes_each_ranks_samples_itself_resumes_only_with_its_world_size(ids):
    class Backwards(TraversalOrder):
        def sample_order(self, epoch):
            return self.shard(self.indices[::-1])

    class EvensFirst(Sequential):
        def global_order(self, epoch):
            return np.concatenate([self.indices[::2], self.indices[1::2]])

    states, _ = take(ranks(ids, 3, order=Backwards), [2, 2, 2])
    make(ids, 0, 3, order=Backwards).load_state_dict(states[0])
    with pytest.raises(ValueError, match=r"makes each rank's samples itself .* Resume with 3 ranks"):
        make(ids, 0, 2, order=Backwards).load_state_dict(states[0])
    states, consumed = take(ranks(ids, 3, order=EvensFirst), [2, 2, 2])
    after = ranks(ids, 2, order=EvensFirst)
    for loader in after:
        loader.load_state_dict(states[0])
    assert assert_each_once(consumed, flat(rest_of_epoch(after)), range(N)) == N


def test_a_plain_state_is_read_as_before(ids):
    state = make(ids, 0, 2).state_dict()
    assert state == {'version': 1, 'epoch': 0, 'batch': 0, 'seed': 5, 'batch_size': BATCH, 'num_samples': N,
                     'world_size': 2, 'rank': 0, 'drop_last': False, 'order': 'ffcv_loader.orders.Random'}
    old_layout = {k: state[k] for k in ('version', 'epoch', 'batch', 'seed', 'batch_size', 'num_samples',
                                        'world_size', 'rank')}
    point = read_resume_point(dict(old_layout, world_size=3, batch=np.int64(2)), batch_size=BATCH,
                              num_samples=N, world_size=2)
    assert point.current_batches == (2, 2, 2) and point.history == () and point.lockstep
    after = ranks(ids, 2)
    for loader in after:
        loader.load_state_dict(dict(old_layout, world_size=3, batch=2, epoch=1))
    assert {loader.state_dict()['version'] for loader in after} == {2}
