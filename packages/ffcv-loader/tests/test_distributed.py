"""Distributed loading with real processes talking through torch.distributed (gloo)."""
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ffcv_loader.testing import ids_file

N = 203   # not a multiple of 2, 3 or the batch size


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize('world_size', [2, 3])
def test_every_sample_once_per_epoch_across_ranks(tmp_path, world_size):
    path = ids_file(str(tmp_path / 'ids.beton'), N)
    out = tmp_path / 'result.json'
    port = free_port()
    worker = Path(__file__).with_name('distributed_worker.py')
    procs = [subprocess.Popen([sys.executable, str(worker), path, str(rank), str(world_size), str(port), str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in range(world_size)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), '\n'.join(outputs)
    result = json.loads(out.read_text())
    per_rank = -(-N // world_size)   # padded so that ranks have equal lengths
    for key, ranks in result.items():
        order, drop_last = key.split('-')
        drop_last = drop_last == 'True'
        assert len(ranks) == world_size
        lengths = {r['len'] for r in ranks}
        assert lengths == {per_rank // 16 if drop_last else -(-per_rank // 16)}, key
        for epoch in range(2):
            ids = [np.array(r['epochs'][epoch]) for r in ranks]
            everything = np.concatenate(ids)
            if drop_last:
                assert len(set(everything.tolist())) == len(everything), key   # no sample twice
                assert len(everything) == world_size * (per_rank // 16) * 16
            else:
                assert set(everything.tolist()) == set(range(N)), key          # every sample
                assert len(everything) == world_size * per_rank                # padding only
            for a in range(world_size):                                       # ranks disjoint
                for b in range(a + 1, world_size):
                    if not drop_last:
                        overlap = set(ids[a].tolist()) & set(ids[b].tolist())
                        assert len(overlap) <= world_size * per_rank - N, key
        if order != 'SEQUENTIAL':
            assert ranks[0]['epochs'][0] != ranks[0]['epochs'][1], key        # reshuffled per epoch
