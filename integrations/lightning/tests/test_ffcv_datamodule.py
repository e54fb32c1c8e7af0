"""FFCVDataModule in one process: loaders made in setup(), one epoch per iter() and none for
an iterator never used, and its state restored before or after setup() continuing mid-epoch."""
import sys
from pathlib import Path

import numpy as np
import pytest
from ffcv.fields.decoders import IntDecoder
from ffcv.transforms import Squeeze, ToTensor
from ffcv_loader.testing import ids_file

pytest.importorskip('lightning')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ffcv_datamodule import FFCVDataModule  # noqa: E402

N, BATCH = 50, 8   # 6 full batches per epoch


def datamodule(path):
    return FFCVDataModule(path, None, batch_size=BATCH, num_workers=1, seed=3,
                          train_pipelines=lambda device: {'id': [IntDecoder(), ToTensor(), Squeeze()]})


def ids(batches):
    return [batch[0].tolist() for batch in batches]


@pytest.mark.parametrize('restore', ['before_setup', 'after_setup'])
def test_datamodule_state_resumes_mid_epoch(tmp_path, restore):
    path = ids_file(str(tmp_path / 'ids.beton'), N)
    reference = datamodule(path)
    reference.setup('fit')
    loader = reference.train_dataloader()
    assert loader.loader is reference.train_dataloader().loader   # the same Loader every epoch ...
    iter(loader)                                                  # (Lightning's probe: unused)
    assert reference.train_loader.state_dict()['epoch'] == 0
    epochs = [ids(loader), ids(loader)]                           # ... a new order at each iter()
    assert epochs[0] != epochs[1] and len(epochs[0]) == N // BATCH
    assert reference.train_loader.state_dict()['epoch'] == 2

    interrupted = datamodule(path)
    interrupted.setup('fit')
    first_epoch = ids(interrupted.train_dataloader())
    iterator = iter(interrupted.train_dataloader())
    taken = [next(iterator)[0].tolist() for _ in range(2)]   # stopped after 2 batches of epoch 1
    state = interrupted.state_dict()
    del iterator
    assert first_epoch == epochs[0] and taken == epochs[1][:2]

    resumed = datamodule(path)
    if restore == 'before_setup':   # Lightning restores after setup(); both orders work
        resumed.load_state_dict(state)
        resumed.setup('fit')
    else:
        resumed.setup('fit')
        resumed.load_state_dict(state)
    rest = ids(resumed.train_dataloader())
    assert rest == epochs[1][2:]
    seen = np.concatenate(taken + rest)
    # each sample at most once, none lost
    assert len(seen) == len(set(seen.tolist())) == (N // BATCH) * BATCH
