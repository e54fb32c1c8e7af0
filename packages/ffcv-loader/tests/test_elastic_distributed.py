"""Resuming with another number of ranks, with real processes talking through torch.distributed
(gloo, 127.0.0.1): 3 ranks stop mid-epoch and 2 resume, 2 stop and 3 resume, and 3 -> 2 -> 3
within one epoch; every order, drop_last both ways, 203 samples in batches of 10."""
import json
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from ffcv_loader.testing import ids_file

N = 203   # not a multiple of the batch size (10) or of the world sizes (2, 3)
CONFIGS = [f'{order}-{drop_last}' for order in ('SEQUENTIAL', 'RANDOM', 'QUASI_RANDOM')
           for drop_last in (False, True)]
WORKER = Path(__file__).with_name('elastic_worker.py')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_phases(path, directory, *phases):
    """Run ``(phase, world_size)`` groups at the same time, each on its own port; wait for all."""
    procs = []
    for phase, world_size in phases:
        port = free_port()
        procs += [subprocess.Popen([sys.executable, str(WORKER), path, str(rank), str(world_size), str(port),
                                    phase, str(directory)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                  for rank in range(world_size)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), '\n'.join(outputs)
    return [[json.loads((directory / f'{phase}{world_size}-rank{rank}.json').read_text())
             for rank in range(world_size)] for phase, world_size in phases]


def flat(batches):
    return [i for batch in batches for i in batch]


def assert_every_sample_once(pieces, epoch_ranks, config):
    """``pieces``: what every rank yielded, before and after the resumes; ``epoch_ranks``: the
    batches each rank of the stopped world size yields in the uninterrupted epoch."""
    seen = Counter(flat(flat(pieces)))
    expected = set(flat(flat(epoch_ranks)))
    assert max(seen.values()) == 1, (config, [i for i, c in seen.items() if c > 1])
    assert set(seen) == expected, (config, sorted(expected - set(seen)), sorted(set(seen) - expected))
    if config.endswith('False'):
        assert len(expected) == N
    else:   # drop_last: each rank's full batches of its ceil(203 / W) samples
        assert len(expected) == len(epoch_ranks) * (-(-N // len(epoch_ranks)) // 10) * 10
    return sum(seen.values())


def assert_lockstep(ranks, key, config):
    assert len({len(rank[config][key]) for rank in ranks}) == 1, (config, key)


@pytest.mark.slow
def test_resume_with_another_number_of_ranks(tmp_path):
    path = ids_file(str(tmp_path / 'ids.beton'), N)
    stop3, stop2 = run_phases(path, tmp_path, ('stop', 3), ('stop', 2))
    resume2, = run_phases(path, tmp_path, ('resume', 2))
    resume3, = run_phases(path, tmp_path, ('resume', 3))
    counted = {}
    for config in CONFIGS:
        epoch1_of_3 = [rank[config]['uninterrupted'][0] for rank in stop3]
        epoch1_of_2 = [rank[config]['uninterrupted'][0] for rank in stop2]
        stopped3 = [rank[config]['consumed'] for rank in stop3]
        stopped2 = [rank[config]['consumed'] for rank in stop2]
        assert all(len(c) == 2 for c in stopped3 + stopped2)

        # 3 -> 2: the rest of the epoch, each sample once; then epoch 2 of 2 ranks, as usual
        assert_lockstep(resume2, 'rest', config)
        rest = [rank[config]['rest'] for rank in resume2]
        counted[config, '3->2'] = assert_every_sample_once(stopped3 + rest, epoch1_of_3, config)
        assert [r[config]['next'] for r in resume2] == [r[config]['uninterrupted'][1] for r in resume2]
        # every rank's state (exact without lockstep) gives the same as rank 0's (ranks were in lockstep)
        assert [rank[config]['rest_from_list'] for rank in resume2] == rest

        # 2 -> 3
        assert_lockstep(resume3, 'rest', config)
        rest = [rank[config]['rest'] for rank in resume3]
        counted[config, '2->3'] = assert_every_sample_once(stopped2 + rest, epoch1_of_2, config)
        assert [r[config]['next'] for r in resume3] == [r[config]['uninterrupted'][1] for r in resume3]
        assert [rank[config]['rest_from_list'] for rank in resume3] == rest

        # 3 -> 2 -> 3 within epoch 1
        again = [rank[config]['consumed_again'] for rank in resume2]
        assert again == [rank[config]['rest'][:3] for rank in resume2]   # the resumed order, again
        assert_lockstep(resume3, 'rest_mid', config)
        rest_mid = [rank[config]['rest_mid'] for rank in resume3]
        counted[config, '3->2->3'] = assert_every_sample_once(stopped3 + again + rest_mid, epoch1_of_3,
                                                              config)
        assert [r[config]['next_mid'] for r in resume3] == [r[config]['uninterrupted'][1] for r in resume3]
    # 203 samples without drop_last; with it, 3 ranks keep 3 * 60 and 2 ranks 2 * 100
    resumes = ('3->2', '2->3', '3->2->3')
    assert counted == {**{(c, k): 203 for c in CONFIGS if c.endswith('False') for k in resumes},
                       **{(c, k): 180 for c in CONFIGS if c.endswith('True') for k in ('3->2', '3->2->3')},
                       **{(c, '2->3'): 200 for c in CONFIGS if c.endswith('True')}}
