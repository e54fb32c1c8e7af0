"""The Loader's state (``Loader.state_dict()``): what it holds, and reading one or a list of them.

A state is a plain dict (``torch.save``/``json`` friendly)::

    {'version': 1, 'epoch': 4, 'batch': 120, 'seed': 0, 'batch_size': 256, 'num_samples': 1281167,
     'world_size': 8, 'rank': 0, 'drop_last': True, 'order': 'ffcv_loader.orders.Random'}

``batch`` is how many batches of the epoch this rank has handed out (a batch counts once the
iterator has returned it). In DDP the ranks advance in lockstep, so one rank's state says what
every rank consumed: :func:`read_resume_point` of one state assumes it. A list of every rank's
state (ranks ``0 .. world_size - 1``) gives each rank's own count, which is exact even when
ranks were not in lockstep; a rank already in the next epoch (``batch`` 0) is read as having
finished the epoch.

A state taken in an epoch that was resumed with another number of ranks has version 2 and one
more entry, ``resumed_from``: the earlier stages of the epoch, oldest first, each
``{'world_size': W, 'batches': [batches consumed by rank 0, ..., rank W - 1]}``
(``ffcv_loader.elastic``); ``world_size`` and ``batch`` are then those of the current stage.
Other states keep version 1, whose layout they have (``drop_last`` and ``order`` were added
as optional entries: a version-1 reader ignores them), so older loaders read them; a version-2
state must not be read as a version-1 one (its ``batch`` counts batches of a resumed stage), and
they refuse it.

This module imports only numpy.
"""
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

from .elastic import Stage

__all__ = ['PLAIN_VERSION', 'ELASTIC_VERSION', 'ResumePoint', 'make_state', 'read_resume_point']

#: a state with no earlier stages (the layout every loader reads)
PLAIN_VERSION = 1
#: a state taken in an epoch resumed with another number of ranks (``resumed_from``)
ELASTIC_VERSION = 2
_REQUIRED = ('version', 'epoch', 'batch', 'seed', 'batch_size', 'num_samples')


@dataclass(frozen=True)
class ResumePoint:
    """Where to resume: ``epoch``, its earlier stages (``history``) and the stage the state(s)
    were taken in (``current``: its world size and each rank's batches consumed; a count of
    ``None`` is a rank that finished the epoch). ``lockstep``: read from one state."""
    epoch: int
    seed: int
    history: Tuple[Stage, ...]
    current_world_size: int
    current_batches: Tuple[Optional[int], ...]
    lockstep: bool
    drop_last: Optional[bool]
    order: Optional[str]


def make_state(*, epoch: int, batch: int, seed: int, batch_size: int, num_samples: int, world_size: int,
               rank: int, drop_last: bool, order: str, history: Sequence[Stage] = ()) -> dict:
    """A state dict (module docstring); version 2 only when ``history`` is not empty."""
    state = {'version': ELASTIC_VERSION if history else PLAIN_VERSION,
             'epoch': int(epoch), 'batch': int(batch), 'seed': int(seed), 'batch_size': int(batch_size),
             'num_samples': int(num_samples), 'world_size': int(world_size), 'rank': int(rank),
             'drop_last': bool(drop_last), 'order': order}
    if history:
        state['resumed_from'] = [{'world_size': stage.world_size, 'batches': list(stage.batches)}
                                 for stage in history]
    return state


def _check_one(state, *, batch_size, num_samples, world_size):
    if not isinstance(state, Mapping):
        raise ValueError(f"not a Loader state: a {type(state).__name__}, not a dict")
    for key in _REQUIRED:
        if key not in state:
            raise ValueError(f"not a Loader state: it has no {key!r}")
    if state['version'] not in (PLAIN_VERSION, ELASTIC_VERSION):
        raise ValueError(f"cannot resume: the state has version {state['version']!r}; this loader reads "
                         f"version {PLAIN_VERSION} states, and version {ELASTIC_VERSION} states (taken in an "
                         f"epoch resumed with another number of ranks)")
    mismatched = [f"{key} {state[key]} (this loader: {ours})"
                  for key, ours in (('batch_size', batch_size), ('num_samples', num_samples))
                  if state[key] != ours]
    if mismatched:
        raise ValueError("cannot resume: the state was saved by a loader with " + ', '.join(mismatched))
    for key in ('epoch', 'batch', 'seed'):
        _whole(state, key, 0)
    if 'world_size' in state:
        _whole(state, 'world_size', 1)


def _whole(state, key, minimum):
    """``state[key]`` as an int of at least ``minimum`` (numpy and torch integers accepted)."""
    value = state[key]
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or number != value or number < minimum:
        raise ValueError(f"not a Loader state: its {key!r} is {value!r}, not an integer >= {minimum}")
    return number


def _history(state):
    if state['version'] == PLAIN_VERSION:
        return ()
    stages = state.get('resumed_from')
    if not isinstance(stages, (list, tuple)) or not stages:
        raise ValueError(f"not a Loader state: version {ELASTIC_VERSION} needs 'resumed_from', the earlier "
                         f"stages of its epoch")
    try:
        return tuple(Stage(stage['world_size'], tuple(stage['batches'])) for stage in stages)
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a Loader state: 'resumed_from' holds {stages!r} ({error})") from None


def read_resume_point(states: Union[Mapping[str, Any], Sequence[Mapping[str, Any]]], *, batch_size: int,
                      num_samples: int, world_size: int) -> ResumePoint:
    """Read one state (lockstep assumed) or the list of every old rank's state into a
    :class:`ResumePoint`; ValueError naming what is wrong or differs. ``world_size`` is the
    reading loader's: the world size of a (hand-made) state that has none."""
    if isinstance(states, Mapping):
        _check_one(states, batch_size=batch_size, num_samples=num_samples, world_size=world_size)
        state_world = _whole(states, 'world_size', 1) if 'world_size' in states else world_size
        return ResumePoint(epoch=_whole(states, 'epoch', 0), seed=_whole(states, 'seed', 0),
                           history=_history(states), current_world_size=state_world,
                           current_batches=(_whole(states, 'batch', 0),) * state_world, lockstep=True,
                           drop_last=states.get('drop_last'), order=states.get('order'))
    if not isinstance(states, (list, tuple)) or not states:
        raise ValueError("load_state_dict takes a state dict, or a non-empty list of every rank's state dict")
    for state in states:
        _check_one(state, batch_size=batch_size, num_samples=num_samples, world_size=world_size)
        if 'world_size' not in state or 'rank' not in state:
            raise ValueError("each state of a list needs its 'world_size' and 'rank'")
    counters = ('epoch', 'batch', 'seed', 'world_size', 'rank')
    states = [dict(state, **{key: _whole(state, key, 0) for key in counters}) for state in states]
    for key in ('world_size', 'seed', 'drop_last', 'order'):
        values = sorted({repr(state.get(key)) for state in states})
        if len(values) > 1:
            raise ValueError(f"the states of the list differ in {key}: {', '.join(values)}")
    old_world = states[0]['world_size']
    ranks = sorted(state['rank'] for state in states)
    if ranks != list(range(old_world)):
        missing = sorted(set(range(old_world)) - set(ranks))
        doubled = sorted({rank for rank in ranks if ranks.count(rank) > 1})
        raise ValueError(f"a list of states needs one state from each of the world_size={old_world} ranks; "
                         f"missing ranks {missing}, ranks given twice {doubled}, "
                         f"out of range {sorted(set(ranks) - set(range(old_world)))}")
    epoch = min(state['epoch'] for state in states)
    in_epoch = [state for state in states if state['epoch'] == epoch]
    for state in states:
        if state['epoch'] != epoch and (state['epoch'] != epoch + 1 or state['batch'] != 0
                                        or state['version'] != PLAIN_VERSION):
            raise ValueError(f"rank {state['rank']}'s state is at epoch {state['epoch']}, batch "
                             f"{state['batch']}, while another rank's is at epoch {epoch}: ranks can be at "
                             f"most one epoch apart, the later ones at the start of it")
    histories = {_history(state) for state in in_epoch}
    if len(histories) > 1:
        raise ValueError(f"the states of epoch {epoch} differ in 'resumed_from' (the earlier stages of the "
                         f"epoch); they must all come from the same run")
    by_rank = {state['rank']: state for state in states}
    batches = tuple(by_rank[rank]['batch'] if by_rank[rank]['epoch'] == epoch else None
                    for rank in range(old_world))
    return ResumePoint(epoch=epoch, seed=states[0]['seed'], history=histories.pop(),
                       current_world_size=old_world, current_batches=batches, lockstep=False,
                       drop_last=states[0].get('drop_last'), order=states[0].get('order'))
