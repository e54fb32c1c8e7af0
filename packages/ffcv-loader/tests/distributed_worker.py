"""One rank of the distributed loading test (run by test_distributed.py in a subprocess)."""
import json
import sys

import numpy as np
import torch.distributed as dist
from ffcv_loader import Loader, OrderOption


def main(path, rank, world_size, port, out):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world_size)
    result = {}
    for order in OrderOption:
        for drop_last in (False, True):
            loader = Loader(path, batch_size=16, num_workers=2, order=order, distributed=True, seed=7,
                            drop_last=drop_last)
            epochs = []
            for _ in range(2):
                epochs.append(np.concatenate([b[0][:, 0].numpy().copy() for b in loader] or [np.zeros(0, int)]).tolist())
            gathered = [None] * world_size
            dist.all_gather_object(gathered, {'epochs': epochs, 'len': len(loader)})
            result[f'{order.name}-{drop_last}'] = gathered
    if rank == 0:
        with open(out, 'w') as f:
            json.dump(result, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
