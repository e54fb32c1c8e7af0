"""Elastic resume: what remains of an interrupted epoch, and how it is dealt to a new number of ranks.

An epoch may be run in *stages*: the normal order with some number of ranks, then, after a
resume with another number of ranks, the samples the first ranks had not consumed, dealt to
the new ranks, and so on. A :class:`Stage` records a stage's world size and how many batches
each of its ranks consumed. Everything here is arithmetic on *positions* in the epoch's global
order (``TraversalOrder.global_order``), never on sample ids, so that ``indices`` holding a
sample twice and the padding repeats of distributed orders are told apart.

The samples of the epoch are those the ranks of the first stage would yield: each rank's batches
of the normal order, after ``drop_last``, a padding repeat of position ``g`` standing for ``g``
(so it is never counted twice). A position is consumed once a batch holding it (or its repeat)
has been handed out. What remains (:func:`remaining_positions`) is kept in the order of the
global order, so a stage continues the epoch front to back.

Dealing the ``m`` remaining positions to ``W`` ranks in batches of at most ``B``
(:func:`split_remainder`), so that every rank has the same number of batches (DDP's lockstep)
and every position is yielded once:

* ``K = ceil(m / (W * B))`` rounds; a round gives every rank one batch, in rank order, as
  consecutive pieces of the remainder (so a stage, like the normal orders, moves through the
  global order with all ranks together);
* every round but the last holds ``W * B`` positions; when the last would hold fewer than
  ``W`` (some rank would get an empty batch), the last two rounds share their positions
  evenly instead (the later one never larger);
* a round of ``s`` positions gives ``s // W + 1`` to its first ``s % W`` ranks and
  ``s // W`` to the others.

So batches are full (``B``) except in the last one or two rounds, where they are as even as
possible, and no batch is empty. That cannot be done when fewer than ``W`` positions remain or
when ``B`` is 1 and ``W`` does not divide ``m``: then the remainder is padded, like
``DistributedSampler``, by repeating its first positions (fewer than ``W`` of them) so that every
batch holds one sample. These are the only repeats. ``drop_last`` does not apply to the
remainder: its samples belong to the epoch, and a partial batch of it is yielded.

This module imports only numpy.
"""
from dataclasses import dataclass
from typing import Callable, Sequence, Tuple

import numpy as np

__all__ = ['Stage', 'RemainderSplit', 'split_remainder', 'normal_batches', 'remaining_positions',
           'stage_batches', 'drop_unconsumed']


@dataclass(frozen=True)
class Stage:
    """A stretch of an epoch run with ``world_size`` ranks, rank ``r`` having consumed
    ``batches[r]`` batches of it."""
    world_size: int
    batches: Tuple[int, ...]

    def __post_init__(self):
        if isinstance(self.world_size, bool) or not isinstance(self.world_size, (int, np.integer)) \
                or self.world_size < 1:
            raise ValueError(f"a stage's world_size must be a positive integer, got {self.world_size!r}")
        batches = tuple(self.batches)
        if len(batches) != self.world_size:
            raise ValueError(f"a stage of world_size {self.world_size} needs a batch count per rank, "
                             f"got {len(batches)}")
        for count in batches:
            if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
                raise ValueError(f"batch counts must be non-negative integers, got {count!r}")
        object.__setattr__(self, 'world_size', int(self.world_size))
        object.__setattr__(self, 'batches', tuple(int(c) for c in batches))

    @property
    def consumed_nothing(self) -> bool:
        return not any(self.batches)


@dataclass(frozen=True)
class RemainderSplit:
    """``count`` remaining positions dealt to ``world_size`` ranks (module docstring).

    ``piece_starts[k, r]`` and ``piece_sizes[k, r]`` are rank ``r``'s batch ``k`` as a stretch of
    the padded remainder, whose element ``p`` is remainder element ``p % count``.
    """
    count: int
    world_size: int
    batch_size: int
    piece_starts: np.ndarray
    piece_sizes: np.ndarray

    @property
    def num_batches(self) -> int:
        """Batches per rank (the same on every rank)."""
        return int(self.piece_sizes.shape[0])

    @property
    def padded_length(self) -> int:
        """Positions dealt, repeats included (``count`` unless the remainder had to be padded)."""
        return int(self.piece_sizes.sum())

    def rank_batches(self, rank: int) -> list:
        """Rank ``rank``'s batches, each an int64 array of indices into the remainder."""
        starts, sizes = self.piece_starts[:, rank].tolist(), self.piece_sizes[:, rank].tolist()
        return [np.arange(start, start + size, dtype=np.int64) % self.count
                for start, size in zip(starts, sizes)]

    def consumed(self, batches: Sequence[int]) -> np.ndarray:
        """Indices into the remainder consumed when rank ``r`` has handed out ``batches[r]`` batches."""
        if len(batches) != self.world_size:
            raise ValueError(f"need a batch count for each of {self.world_size} ranks, got {len(batches)}")
        taken = np.zeros(self.padded_length, dtype=bool)
        for rank, count in enumerate(batches):
            starts, sizes = self.piece_starts[:count, rank].tolist(), self.piece_sizes[:count, rank].tolist()
            for start, size in zip(starts, sizes):
                taken[start:start + size] = True
        return np.unique(np.flatnonzero(taken) % self.count) if self.count else np.zeros(0, dtype=np.int64)


def split_remainder(count: int, world_size: int, batch_size: int) -> RemainderSplit:
    """Deal ``count`` remaining positions to ``world_size`` ranks in batches of at most
    ``batch_size``, every rank the same number of batches, no batch empty (module docstring)."""
    for value, name in ((count, 'count'), (world_size, 'world_size'), (batch_size, 'batch_size')):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if count < 0 or world_size < 1 or batch_size < 1:
        raise ValueError(f"need count >= 0, world_size >= 1 and batch_size >= 1, got {count}, {world_size}, "
                         f"{batch_size}")
    count, world_size, batch_size = int(count), int(world_size), int(batch_size)
    per_round = world_size * batch_size
    rounds = -(-count // per_round)
    padded = max(count, rounds * world_size)      # more than count: fewer than W left, or B == 1
    sizes = np.full(rounds, per_round, dtype=np.int64)
    if rounds:
        sizes[-1] = padded - (rounds - 1) * per_round
        if rounds >= 2 and sizes[-1] < world_size:
            both = int(sizes[-2] + sizes[-1])
            sizes[-2], sizes[-1] = both - both // 2, both // 2
    ranks = np.arange(world_size, dtype=np.int64)
    piece_sizes = sizes[:, None] // world_size + (ranks[None, :] < (sizes % world_size)[:, None])
    round_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if rounds else sizes
    piece_starts = round_starts[:, None] + np.cumsum(piece_sizes, axis=1) - piece_sizes
    return RemainderSplit(count, world_size, batch_size, piece_starts.reshape(rounds, world_size),
                          piece_sizes.reshape(rounds, world_size))


def normal_batches(num_samples: int, world_size: int, batch_size: int, drop_last: bool) -> int:
    """Batches per rank of a normal (not resumed) epoch of ``num_samples`` dealt to ``world_size``
    ranks (each rank gets ``ceil(num_samples / world_size)``, padding included)."""
    length = -(-num_samples // world_size)
    return length // batch_size if drop_last else -(-length // batch_size)


def _check_counts(stage, available, where):
    for rank, count in enumerate(stage.batches):
        if count > available:
            raise ValueError(f"rank {rank} of {stage.world_size} is said to have consumed {count} batches "
                             f"{where}, which has {available} batches per rank")


def remaining_positions(num_samples: int, batch_size: int, drop_last: bool, stages: Sequence[Stage],
                        dealt_positions: Callable[[int], np.ndarray]) -> np.ndarray:
    """Positions (in the epoch's global order, ascending) of the epoch's samples that none of
    ``stages`` consumed. ``stages[0]`` is the normal order, whose dealing to ``world_size``
    ranks ``dealt_positions(world_size)`` gives (``TraversalOrder.dealt_positions``); each later
    stage is the remainder of the ones before, dealt by :func:`split_remainder`. A stage saying a
    rank consumed more batches than it had is a ValueError."""
    if not stages:
        return np.arange(num_samples, dtype=np.int64)
    first = stages[0]
    dealt = np.asarray(dealt_positions(first.world_size), dtype=np.int64)
    length = -(-num_samples // first.world_size)
    if dealt.shape != (first.world_size, length):
        raise ValueError(f"dealt_positions({first.world_size}) has shape {dealt.shape}, expected "
                         f"{(first.world_size, length)}")
    per_rank = normal_batches(num_samples, first.world_size, batch_size, drop_last)
    _check_counts(first, per_rank, f"of the epoch's normal order with world_size {first.world_size}")
    yielded = min(length, per_rank * batch_size)
    in_epoch = np.zeros(num_samples, dtype=bool)
    in_epoch[dealt[:, :yielded].reshape(-1)] = True
    consumed = np.zeros(num_samples, dtype=bool)
    for rank, count in enumerate(first.batches):
        consumed[dealt[rank, :min(count * batch_size, yielded)]] = True
    remaining = np.flatnonzero(in_epoch & ~consumed)
    for number, stage in enumerate(stages[1:], 1):
        split = split_remainder(remaining.size, stage.world_size, batch_size)
        _check_counts(stage, split.num_batches, f"in resumed stage {number} (world_size {stage.world_size})")
        remaining = np.delete(remaining, split.consumed(stage.batches))
    return remaining


def stage_batches(num_samples: int, batch_size: int, drop_last: bool, stages_before: Sequence[Stage],
                  world_size: int, dealt_positions: Callable[[int], np.ndarray]) -> int:
    """Batches per rank of the stage run with ``world_size`` ranks after ``stages_before``: the
    normal count when there are none, else the count of the remainder's split."""
    if not stages_before:
        return normal_batches(num_samples, world_size, batch_size, drop_last)
    remaining = remaining_positions(num_samples, batch_size, drop_last, stages_before, dealt_positions)
    return split_remainder(remaining.size, world_size, batch_size).num_batches


def drop_unconsumed(stages: Sequence[Stage]) -> Tuple[Stage, ...]:
    """``stages`` without those in which no rank consumed anything. A later stage that consumed
    nothing changes nothing (the remainder after it is the one before it, in the same order); a
    first stage that consumed nothing is the normal order, which the next world size then runs
    as its own normal order. (A first stage that consumed nothing is never followed by others in
    a state: it is dropped when the state is loaded.)"""
    return tuple(stage for stage in stages if not stage.consumed_nothing)
