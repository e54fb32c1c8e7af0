"""One rank of the elastic resume test (run by test_elastic_distributed.py in a subprocess).

``python elastic_worker.py PATH RANK WORLD_SIZE PORT PHASE DIR``: joins a gloo group on
127.0.0.1 and, for every order and drop_last, runs PHASE:

* ``stop``: epoch 0 whole, then ``STOP_AFTER`` batches of epoch 1; saves its state
  (``DIR/stop{W}-{config}-rank{R}.pt``);
* ``resume``: from rank 0's ``stop`` state of the other world size (lockstep), the rest of
  epoch 1 and epoch 2; from the list of every rank's state, the rest of epoch 1 again; with 2
  ranks (resuming a 3-rank state), ``AGAIN_AFTER`` batches of epoch 1 only, then a state
  (``mid2``); with 3 ranks, also from rank 0's ``mid2`` state, the rest of epoch 1 and epoch 2.

Each phase also records what an uninterrupted loader of this world size yields in epochs 1 and
2. Results: ``DIR/{phase}{W}-rank{R}.json``.
"""
import json
import sys

import torch
import torch.distributed as dist
from ffcv_loader import Loader, OrderOption

STOP_AFTER = 2
AGAIN_AFTER = 3


def ids(batch):
    return batch[0][:, 0].tolist()


def epoch_batches(loader):
    return [ids(batch) for batch in loader]


def main(path, rank, world_size, port, phase, directory):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world_size)
    other = {3: 2, 2: 3}[world_size]
    result = {}
    for order in OrderOption:
        for drop_last in (False, True):
            config = f'{order.name}-{drop_last}'

            def make(workers):
                return Loader(path, batch_size=10, num_workers=workers, order=order, distributed=True,
                              seed=11, drop_last=drop_last)

            reference = make(1)
            reference.load_state_dict(dict(reference.state_dict(), epoch=1))
            record = {'uninterrupted': [epoch_batches(reference), epoch_batches(reference)]}   # epochs 1, 2
            if phase == 'stop':
                loader = make(2)
                epoch_batches(loader)
                iterator = iter(loader)
                record['consumed'] = [ids(next(iterator)) for _ in range(STOP_AFTER)]
                torch.save(loader.state_dict(), f'{directory}/stop{world_size}-{config}-rank{rank}.pt')
            elif phase == 'resume':
                saved = [torch.load(f'{directory}/stop{other}-{config}-rank{r}.pt') for r in range(other)]
                loader = make(1)
                loader.load_state_dict(saved[0])
                record['rest'] = epoch_batches(loader)
                record['next'] = epoch_batches(loader)
                listed = make(2)
                listed.load_state_dict(saved)
                record['rest_from_list'] = epoch_batches(listed)
                if world_size == 2:
                    again = make(2)
                    again.load_state_dict(saved[0])
                    iterator = iter(again)
                    record['consumed_again'] = [ids(next(iterator)) for _ in range(AGAIN_AFTER)]
                    torch.save(again.state_dict(), f'{directory}/mid2-{config}-rank{rank}.pt')
                else:
                    mid = make(2)
                    mid.load_state_dict(torch.load(f'{directory}/mid2-{config}-rank0.pt'))
                    record['rest_mid'] = epoch_batches(mid)
                    record['next_mid'] = epoch_batches(mid)
            result[config] = record
    with open(f'{directory}/{phase}{world_size}-rank{rank}.json', 'w') as f:
        json.dump(result, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])
