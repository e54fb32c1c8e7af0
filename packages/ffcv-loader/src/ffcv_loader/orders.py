"""Traversal orders: which samples an epoch visits, in which order, on which rank.

An order is built once per Loader from the sample ids to visit (``indices``) and gives, for
each epoch, this rank's sample ids as an int64 array (:meth:`TraversalOrder.sample_order`).
The Loader cuts that array into batches of ``batch_size``.

Three orders come with the package (``OrderOption``, FFCV 1.0's names):

* ``SEQUENTIAL`` -- :class:`Sequential`: ``indices`` in the order given.
* ``RANDOM`` -- :class:`Random`: a fresh uniform permutation every epoch.
* ``QUASI_RANDOM`` -- :class:`QuasiRandom`: random, but touching few file pages at a time
  (for the process cache): see its docstring for the locality guarantee.

Randomness comes only from ``(seed, epoch)`` through numpy's ``SeedSequence``, never from
global state: the same seed and epoch give the same order in every process and on every
rank (with the same numpy version), and each epoch gets its own permutation.

Distributed (``distributed=True``): each epoch's global order (the same on every rank) is
padded, like ``torch.utils.data.DistributedSampler``, by repeating its first elements until
its length is a multiple of ``world_size``; every rank then gets ``ceil(n / world_size)``
samples, so ranks never differ in length, and across ranks every sample of ``indices``
appears exactly once plus ``world_size * ceil(n / world_size) - n < world_size`` repeats.
Sequential and Random deal the padded order like DistributedSampler (rank ``r`` gets
elements ``r, r + W, r + 2W, ...``); QuasiRandom deals it in blocks of ``batch_size`` to keep
each rank's batches local (see :class:`QuasiRandom`). The padded repeats are the last
elements of the padded global order; every rank that gets one gets it at its very end.

``drop_last`` is not applied here: the Loader drops each rank's partial last batch itself.
Since all ranks have the same length ``L``, they all drop the same batch. When ``L`` is not
a multiple of ``batch_size``, every padded repeat lies in a dropped partial batch, so with
``drop_last=True`` no sample is seen twice; when ``L`` is a multiple of ``batch_size``
nothing is dropped and the (fewer than ``world_size``) repeats are kept.

Dealing, for resuming with another world size (``docs/elastic-resume.md``): the built-in
orders make an epoch's global order (:meth:`TraversalOrder.global_order`, the same on every
rank and for every world size) and deal it to ranks by position (:meth:`~TraversalOrder.shard`).
:meth:`TraversalOrder.dealt_positions` says which positions of the global order each rank of
any world size gets, so that a loader can work out what the ranks of another world size
consumed. A custom order takes part when it derives from a built-in order and overrides
``global_order`` (and, if it deals otherwise, ``shard``, by position) but not
``sample_order`` (:func:`deals_global_order`).

This module imports only numpy.
"""
import abc
import copy
import enum
import inspect
import math
import operator
from typing import Type, Union

import numpy as np

__all__ = ['OrderOption', 'TraversalOrder', 'Sequential', 'Random', 'QuasiRandom', 'ORDER_TYPES',
           'ORDER_TYPE', 'make_order', 'deals_global_order']

# spawn_key of every SeedSequence made here, so that an order's generator never equals a
# generator made elsewhere from (seed, epoch, ...) as plain entropy (augmentations, say).
_ORDER_KEY = 0x0FFC_0D3E


class OrderOption(enum.Enum):
    """The built-in traversal orders (FFCV 1.0's names and values)."""
    SEQUENTIAL = enum.auto()
    RANDOM = enum.auto()
    QUASI_RANDOM = enum.auto()


def _integer(value, name, minimum=None):
    """``value`` as a Python int (bools refused), at least ``minimum``; ValueError otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, not {value!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _id_array(values, name):
    """A read-only 1-D int64 array of non-negative ids; ValueError for anything else.

    Not copied when ``values`` already is a 1-D int64 array (the result is then a read-only
    view of it).
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integers, got an array of shape {array.shape}")
    if array.size == 0:
        array = np.empty(0, dtype=np.int64)
    elif array.dtype.kind not in 'iu':
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    elif array.dtype.kind == 'u' and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds {array.max()}, beyond int64")
    array = array.astype(np.int64, copy=False).view()
    if array.size and array.min() < 0:
        raise ValueError(f"{name} must not hold negative values, found {array.min()}")
    array.flags.writeable = False
    return array


class TraversalOrder(abc.ABC):
    """Base class of traversal orders; subclass it for a custom order.

    A subclass implements :meth:`sample_order`. The constructor stores its arguments as
    attributes of the same names (``indices`` as a read-only int64 array, ``seed``,
    ``distributed``, ``rank``, ``world_size``, ``batch_size``, ``drop_last``,
    ``sample_pages``) after checking them; a subclass that overrides ``__init__`` calls
    ``super().__init__(indices, **kwargs)``. Two helpers do the usual work:
    :meth:`epoch_rng` (the epoch's generator) and :meth:`shard` (padding and dealing a global
    order to this rank). ``len(order)`` is the number of samples this rank visits per epoch,
    which :meth:`sample_order` of the built-in orders always returns.

    A minimal custom order, reversed and sharded like DistributedSampler::

        class Reversed(TraversalOrder):
            def sample_order(self, epoch):
                return self.shard(self.indices[::-1])
    """
    #: Mixed into :meth:`epoch_rng`'s seed, so that orders of different classes differ.
    SALT = 0

    def __init__(self, indices, *, seed=None, distributed=False, rank=0, world_size=1, batch_size=1,
                 drop_last=False, sample_pages=None):
        if hasattr(indices, 'traversal_arguments'):
            # FFCV 1.0's protocol: an order is built from the loader (``__init__(self, loader)``)
            self.loader = indices
            arguments = indices.traversal_arguments()
            indices, seed = arguments['indices'], arguments['seed']
            distributed, rank, world_size = arguments['distributed'], arguments['rank'], arguments['world_size']
            batch_size, drop_last = arguments['batch_size'], arguments['drop_last']
            sample_pages = arguments['sample_pages']
        if seed is None:
            raise ValueError("a traversal order needs a seed (an integer)")
        self.indices = _id_array(indices, 'indices')
        self.seed = _integer(seed, 'seed', 0)
        self.distributed = bool(distributed)
        self.world_size = _integer(world_size, 'world_size', 1)
        self.rank = _integer(rank, 'rank', 0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be in [0, world_size={self.world_size}), got {self.rank}")
        self.batch_size = _integer(batch_size, 'batch_size', 1)
        self.drop_last = bool(drop_last)
        if sample_pages is not None:
            sample_pages = np.asarray(sample_pages)
            if sample_pages.ndim != 1 or (sample_pages.size and sample_pages.dtype.kind not in 'iu'):
                raise ValueError(f"sample_pages must be a 1-D array of integers (the page of each sample "
                                 f"id), "
                                 f"got shape {sample_pages.shape} and dtype {sample_pages.dtype}")
            if self.indices.size and self.indices.max() >= sample_pages.size:
                raise ValueError(f"indices hold sample id {self.indices.max()} but sample_pages covers only "
                                 f"{sample_pages.size} samples")
        self.sample_pages = sample_pages

    @abc.abstractmethod
    def sample_order(self, epoch: int) -> np.ndarray:
        """This rank's sample ids for ``epoch`` (a 1-D int64 array), in traversal order.

        Callers must treat the result as read-only (it may be a read-only array).
        """

    @property
    def _num_shards(self):
        return self.world_size if self.distributed else 1

    def __len__(self):
        return -(-self.indices.size // self._num_shards)

    def epoch_rng(self, epoch, salt=0):
        """The ``np.random.Generator`` of ``epoch``: a function of (seed, epoch, salt, the class's
        ``SALT``) only, the same in every process and on every rank."""
        epoch = _integer(epoch, 'epoch', 0)
        sequence = np.random.SeedSequence([self.seed, epoch],
                                          spawn_key=(_ORDER_KEY, self.SALT, salt))
        return np.random.default_rng(sequence)

    def pad(self, order):
        """``order`` padded with its own first elements (cyclically, like DistributedSampler)
        to ``world_size * len(self)`` elements when distributed; unchanged otherwise."""
        total = len(self) * self._num_shards
        if order.size == total:
            return order
        return np.resize(order, total)

    def shard(self, order):
        """This rank's share of the epoch's global ``order`` (the same on every rank):
        ``order`` itself when not distributed, else elements ``rank, rank + W, ...`` of the
        padded order (DistributedSampler's layout)."""
        if not self.distributed or self.world_size == 1:
            return order
        return np.ascontiguousarray(self.pad(order)[self.rank::self.world_size])

    def global_order(self, epoch: int) -> np.ndarray:
        """The epoch's order of all of ``indices``, before padding and dealing (the same on
        every rank and for every world size). The built-in orders define it; their
        :meth:`sample_order` is ``self.shard(self.global_order(epoch))``."""
        raise NotImplementedError(f"{type(self).__name__} does not define global_order(epoch)")

    def dealt_positions(self, world_size: int) -> np.ndarray:
        """Which positions of the epoch's global order each rank of ``world_size`` ranks gets:
        a ``(world_size, ceil(n / world_size))`` int64 array whose row ``r`` is rank ``r``'s
        :meth:`shard` of ``np.arange(n)`` (``n = len(indices)``), padding repeats included
        (a repeat of position ``g`` reads ``g``). The same for every epoch and seed, and
        whether or not this order is distributed."""
        world_size = _integer(world_size, 'world_size', 1)
        n = self.indices.size
        length = -(-n // world_size)
        if n == 0:
            return np.zeros((world_size, 0), dtype=np.int64)
        if type(self).shard is TraversalOrder.shard:   # DistributedSampler's layout, vectorised
            dealt = np.arange(length, dtype=np.int64)[None, :] * world_size + np.arange(world_size)[:, None]
            return dealt % n
        positions = np.arange(n, dtype=np.int64)
        rows = [self._dealing(rank, world_size).shard(positions) for rank in range(world_size)]
        return np.stack([np.asarray(row, dtype=np.int64) for row in rows])

    def _dealing(self, rank, world_size):
        """A shallow copy of this order dealing to ``rank`` of ``world_size`` ranks."""
        other = copy.copy(self)
        other.distributed, other.rank, other.world_size = True, rank, world_size
        return other


class Sequential(TraversalOrder):
    """``indices`` in the order given, every epoch (``seed`` unused)."""

    def global_order(self, epoch):
        _integer(epoch, 'epoch', 0)
        return self.indices

    def sample_order(self, epoch):
        return self.shard(self.global_order(epoch))


class Random(TraversalOrder):
    """A uniform random permutation of ``indices`` per epoch, from (seed, epoch) only."""
    SALT = 1

    def global_order(self, epoch):
        return self.indices[self.epoch_rng(epoch).permutation(self.indices.size)]

    def sample_order(self, epoch):
        return self.shard(self.global_order(epoch))


class QuasiRandom(TraversalOrder):
    """A random order that reads few pages at a time, for the process cache.

    Each epoch: the pages that hold the samples of ``indices`` (``sample_pages[i]`` is the
    page of sample ``i``) are shuffled and cut into consecutive groups of ``G`` pages
    (:attr:`group_pages`); the order visits the groups one after the other, each group's
    samples in a uniformly random order.

    Locality guarantee (global order, and each rank's own order): the samples of a page all
    lie inside its group's stretch of the order, so at any point at most ``G`` pages have
    been started and not finished, and a cache of ``G`` pages (plus read-ahead) never has to
    load a page twice in an epoch. Any window of consecutive samples touches at most ``G``
    pages per group it overlaps; when every group holds at least ``batch_size`` samples (as
    when pages hold ``batch_size / G`` samples or more), any window of ``batch_size``
    consecutive samples, hence any batch, touches at most ``2 * G`` pages. When distributed,
    the only exception is the padding, repeats of the epoch's first samples at the very end.

    ``G`` is ``pages_per_group`` (argument or class attribute) when given; by default it is
    ``ceil(2 * batch_size / m)`` clipped to [8, 64], where ``m`` is the mean number of selected
    samples per page, so that a group holds about two batches (at least 8 pages for
    randomness, at most 64 to bound the cache).

    Distributed: the padded global order is cut into blocks of ``batch_size`` that are dealt
    to the ranks round-robin (rank ``r`` gets blocks ``r, r + W, ...``), so each of a rank's
    full batches is one contiguous block of the global order; the remainder of fewer than
    ``W * batch_size`` samples is split into ``W`` equal contiguous chunks, chunk ``r`` ending
    rank ``r``'s order as its partial last batch.

    Without ``sample_pages`` every sample is its own page, and the order is a uniform
    permutation (like :class:`Random`, but not the same permutation).
    """
    SALT = 2
    pages_per_group = None
    MIN_GROUP_PAGES = 8
    MAX_GROUP_PAGES = 64

    def __init__(self, indices, *, pages_per_group=None, **kwargs):
        super().__init__(indices, **kwargs)
        if pages_per_group is None:
            pages_per_group = type(self).pages_per_group
        if self.sample_pages is None or self.indices.size == 0:
            self._page_of = None
            self.num_pages = self.indices.size
            self.group_pages = (1 if pages_per_group is None
                                else _integer(pages_per_group, 'pages_per_group', 1))
            return
        pages = np.asarray(self.sample_pages[self.indices])
        _, page_of = np.unique(pages, return_inverse=True)
        self.num_pages = int(page_of.max()) + 1
        self._page_of = page_of.reshape(-1).astype(np.int32 if self.num_pages < 2**31 else np.int64)
        if pages_per_group is None:
            per_page = self.indices.size / self.num_pages
            pages_per_group = min(max(math.ceil(2 * self.batch_size / per_page), self.MIN_GROUP_PAGES),
                                  self.MAX_GROUP_PAGES)
        self.group_pages = _integer(pages_per_group, 'pages_per_group', 1)

    def global_order(self, epoch):
        """The epoch's quasi-random order of all of ``indices`` (the same on every rank)."""
        rng = self.epoch_rng(epoch)
        if self._page_of is None:
            return self.indices[rng.permutation(self.indices.size)]
        position = np.empty(self.num_pages, dtype=np.int64)
        position[rng.permutation(self.num_pages)] = np.arange(self.num_pages)
        group_of_page = position // self.group_pages
        if self.num_pages <= self.group_pages << 16:   # few groups: uint16 keys, which numpy radix-sorts
            group_of_page = group_of_page.astype(np.uint16)
        shuffled = rng.permutation(self.indices.size)
        by_group = np.argsort(group_of_page[self._page_of[shuffled]], kind='stable')
        return self.indices[shuffled[by_group]]

    def shard(self, order):
        """Blocks of ``batch_size`` dealt round-robin, then equal chunks of the remainder."""
        if not self.distributed or self.world_size == 1:
            return order
        padded = self.pad(order)
        ranks, batch = self.world_size, self.batch_size
        rounds = padded.size // (ranks * batch)
        head = rounds * ranks * batch
        chunk = (padded.size - head) // ranks
        blocks = padded[:head].reshape(rounds, ranks, batch)[:, self.rank, :].reshape(-1)
        tail = padded[head + self.rank * chunk:head + (self.rank + 1) * chunk]
        return np.concatenate([blocks, tail])

    def dealt_positions(self, world_size):
        """As :meth:`TraversalOrder.dealt_positions`, for this order's dealing in blocks."""
        world_size = _integer(world_size, 'world_size', 1)
        n, batch = self.indices.size, self.batch_size
        length = -(-n // world_size)
        if n == 0 or type(self).shard is not QuasiRandom.shard:
            return super().dealt_positions(world_size)
        rounds = length // batch
        head = rounds * world_size * batch
        blocks = np.arange(head, dtype=np.int64).reshape(rounds, world_size, batch).transpose(1, 0, 2)
        tail_length = length - rounds * batch
        tails = head + np.arange(world_size * tail_length, dtype=np.int64).reshape(world_size, tail_length)
        return np.concatenate([blocks.reshape(world_size, rounds * batch), tails], axis=1) % n

    def sample_order(self, epoch):
        return self.shard(self.global_order(epoch))


def deals_global_order(order: TraversalOrder) -> bool:
    """Whether ``order``'s :meth:`~TraversalOrder.sample_order` is a built-in one, which deals
    :meth:`~TraversalOrder.global_order` by :meth:`~TraversalOrder.shard`: then which samples
    ranks of any world size get is known (:meth:`~TraversalOrder.dealt_positions`)."""
    return type(order).sample_order in _DEALING_SAMPLE_ORDERS


_DEALING_SAMPLE_ORDERS = (Sequential.sample_order, Random.sample_order, QuasiRandom.sample_order)

ORDER_TYPES = {
    OrderOption.SEQUENTIAL: Sequential,
    OrderOption.RANDOM: Random,
    OrderOption.QUASI_RANDOM: QuasiRandom,
}

#: what a Loader's ``order`` may be (FFCV 1.0's name for the type)
ORDER_TYPE = Union[OrderOption, str, Type[TraversalOrder]]


def _order_class(order):
    if isinstance(order, OrderOption):
        return ORDER_TYPES[order]
    if isinstance(order, str):
        key = order.strip().upper().replace('-', '_').replace(' ', '_')
        if key in OrderOption.__members__:
            return ORDER_TYPES[OrderOption[key]]
    if isinstance(order, type) and issubclass(order, TraversalOrder) and not getattr(
            order, '__abstractmethods__', None):
        return order
    accepted = ', '.join(f"OrderOption.{option.name} (or {option.name.lower()!r})" for option in OrderOption)
    raise ValueError(f"unknown traversal order {order!r}; accepted: {accepted}, "
                     f"or a subclass of TraversalOrder that implements sample_order")


def _built_from_loader(cls):
    """Whether ``cls`` is an FFCV 1.0 style order, built as ``cls(loader)``."""
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_KEYWORD for p in params) or any(p.name == 'seed' for p in params):
        return False
    required = [p for p in params if p.default is p.empty and p.kind is not p.VAR_POSITIONAL]
    return len(required) == 1


def make_order(order, indices, *, seed, distributed=False, rank=0, world_size=1, batch_size=1,
               drop_last=False, sample_pages=None, loader=None, order_kwargs=None):
    """Build the traversal order ``order`` over ``indices``.

    ``order`` is an :class:`OrderOption`, its name as a string (case-insensitive, e.g.
    ``'random'`` or ``'quasi_random'``), or a concrete :class:`TraversalOrder` subclass (built
    with the same keyword arguments, or, for an FFCV 1.0 style subclass whose ``__init__``
    takes only the loader, as ``cls(loader)``). Anything else raises ValueError.
    ``order_kwargs`` go to the order's constructor as further keyword arguments (e.g.
    ``pages_per_group`` of :class:`QuasiRandom`); an argument it does not take is a ValueError.
    """
    cls = _order_class(order)
    extra = dict(order_kwargs or {})
    _check_order_kwargs(cls, extra)
    if loader is not None and _built_from_loader(cls):
        return cls(loader, **extra)
    return cls(indices, seed=seed, distributed=distributed, rank=rank, world_size=world_size,
               batch_size=batch_size, drop_last=drop_last, sample_pages=sample_pages, **extra)


def _check_order_kwargs(cls, extra):
    if not extra:
        return
    accepted = set()
    for klass in cls.__mro__:   # subclasses pass **kwargs on to their bases
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]
        accepted.update(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    accepted -= {'indices', 'loader', 'seed', 'distributed', 'rank', 'world_size', 'batch_size', 'drop_last',
                 'sample_pages'}
    unknown = sorted(set(extra) - accepted)
    if unknown:
        raise ValueError(f"order_kwargs {unknown} are not arguments of {cls.__name__} "
                         f"(it accepts: {', '.join(sorted(accepted)) or 'none'})")
