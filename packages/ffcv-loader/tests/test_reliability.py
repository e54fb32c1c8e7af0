"""What the loader does when things go wrong: a damaged file names file, output and sample;
every way out of an epoch resumes exactly; a loader that yields nothing says so; buffers
larger than the memory are refused before they are allocated."""
import gc
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from ffcv_format import BytesField, DatasetWriter, FormatError, IntField, NDArrayField, Reader
from ffcv_loader import Loader, OrderOption
from ffcv_loader.testing import ids_file, images_file
from ffcv_ops import IntDecoder, Operation, RandomHorizontalFlip, RandomResizedCropRGBImageDecoder


@pytest.fixture(scope='module')
def arrays(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('arrays') / 'arrays.beton')
    samples = [(i, np.full(1000, i, np.int32), np.full(i % 50 + 1, i % 256, np.uint8)) for i in range(300)]
    DatasetWriter(path, {'id': IntField(), 'x': NDArrayField(np.dtype('<i4'), (1000,)), 'blob': BytesField()},
                  page_size=1 << 21, progress=False).from_indexed_dataset(samples)
    return path


def damaged_copy(path, tmp_path, field, member, sample, value):
    """A copy of ``path`` whose sample ``sample`` has ``value`` in metadata ``field[member]``."""
    reader = Reader(path)
    start = reader.metadata_start + sample * reader.metadata_type.itemsize
    offset = reader.metadata_type.fields[field][1]
    if member:
        offset += reader.metadata_type[field].fields[member][1]
    reader.close()
    target = str(tmp_path / 'damaged.beton')
    shutil.copyfile(path, target)
    with open(target, 'r+b') as f:
        f.seek(start + offset)
        f.write(int(value).to_bytes(8, 'little'))
    return target


# ------------------------------------------------------------ damaged files


@pytest.mark.parametrize('os_cache', [True, False])
@pytest.mark.parametrize('field,member,value,problem', [
    ('x', '', 1 << 56, 'outside the data region'),
    ('x', '', 1 << 62, 'outside the data region'),
    ('x', '', 0, 'outside the data region'),                  # the header
    ('x', '', 'metadata', 'outside the data region'),
    ('x', '', 'other', 'allocation of another sample'),
    ('x', '', 'middle', 'is not an allocation'),
    ('blob', 'size', 7, 'holds 5 bytes, its metadata says 7'),
    ('blob', 'ptr', 'end', 'outside the data region'),
])
def test_a_damaged_pointer_or_size_is_a_format_error_naming_file_output_and_sample(arrays, tmp_path, os_cache,
                                                                                  field, member, value, problem):
    reader = Reader(arrays)
    sample = 104                                                # in the 14th batch of 8
    if value == 'metadata':
        value = reader.metadata_start + 16
    elif value == 'other':
        value = int(reader.metadata['x'][7])
    elif value == 'middle':
        value = int(reader.metadata['x'][sample]) + 4
    elif value == 'end':
        value = reader.file_size - 10
    reader.close()
    path = damaged_copy(arrays, tmp_path, field, member, sample, value)
    loader = Loader(path, batch_size=8, num_workers=2, os_cache=os_cache,
                    pipelines={'id': None, 'x' if field != 'x' else 'blob': None})
    got = 0
    with pytest.raises(FormatError) as info:
        for _ in loader:
            got += 1
    assert got == 13                                           # every batch before the damaged one
    message = str(info.value)
    assert repr(path) in message and 'epoch 0, batch 13' in message
    assert f"output {field!r} (field {field!r})" in message and f"sample {sample}: " in message
    assert problem in message, message


def test_an_exception_in_an_operation_carries_where_it_happened(arrays):
    class Fails(Operation):
        is_parallel, compiled = True, False

        def generate_code(self):
            def fail(x, dst, indices, seed):
                if 61 in indices.tolist():
                    raise ZeroDivisionError('bad luck')
                return x
            return fail

        def declare_state_and_memory(self, previous_state):
            return previous_state, None

    loader = Loader(arrays, batch_size=16, num_workers=2, pipelines={'id': [IntDecoder(), Fails()]})
    with pytest.raises(ZeroDivisionError, match='bad luck') as info:
        list(loader)
    notes = '\n'.join(getattr(info.value, '__notes__', []))
    assert f"{arrays!r}, epoch 0, batch 3, output 'id' (field 'id'), samples [48, 49" in notes
    assert 'fail' in {entry.name for entry in info.traceback}     # the worker's frames are kept


# ------------------------------------------------------------ resuming after any way out of an epoch


def reference_batches(make, epochs=2):
    loader = make()
    return [[tuple(x.numpy().copy() if isinstance(x, torch.Tensor) else x.copy() for x in batch)
             for batch in loader] for _ in range(epochs)]


def snapshot(batch):
    return tuple(x.numpy().copy() if isinstance(x, torch.Tensor) else x.copy() for x in batch)


class StopAt(Operation):
    """Raises ``error`` for the batch holding sample ``sample`` while armed."""
    is_parallel, compiled = False, False

    def __init__(self, sample, error):
        super().__init__()
        self.sample, self.error, self.armed = sample, error, True

    def generate_code(self):
        def maybe(x, dst, indices, seed):
            if self.armed and self.sample in indices.tolist():
                raise self.error
            return x
        return maybe

    def declare_state_and_memory(self, previous_state):
        return previous_state, None


@pytest.mark.parametrize('os_cache', [True, False])
@pytest.mark.parametrize('how', ['break', 'exception', 'ctrl-c', 'dropped'])
def test_state_dict_resumes_exactly_after_any_way_out_of_an_epoch(tmp_path, os_cache, how):
    path, _ = images_file(str(tmp_path / 'im.beton'), 150)
    stop = StopAt(0, KeyboardInterrupt() if how == 'ctrl-c' else RuntimeError('failed'))

    def make(extra=()):
        return Loader(path, batch_size=8, num_workers=2, order=OrderOption.RANDOM, seed=4, os_cache=os_cache,
                      pipelines={'image': [RandomResizedCropRGBImageDecoder((16, 16)), RandomHorizontalFlip()],
                                 'label': [IntDecoder(), *extra]})

    reference = reference_batches(make)           # 18 batches per epoch
    first_epoch_order = make().first_traversal_order
    stop.sample = int(first_epoch_order[8 * 5 + 3])  # in batch 5
    loader = make([stop] if how in ('exception', 'ctrl-c') else [])
    seen = []
    if how == 'break':
        for batch in loader:
            seen.append(snapshot(batch))
            if len(seen) == 5:
                break
    elif how == 'dropped':
        it = iter(loader)
        seen = [snapshot(next(it)) for _ in range(5)]
        del it
        gc.collect()
    else:
        with pytest.raises(KeyboardInterrupt if how == 'ctrl-c' else RuntimeError):
            for batch in loader:
                seen.append(snapshot(batch))
    assert len(seen) == 5
    state = loader.state_dict()
    assert (state['epoch'], state['batch']) == (0, 5)
    stop.armed = False
    resumed = make([stop] if how in ('exception', 'ctrl-c') else [])
    resumed.load_state_dict(state)
    rest = [snapshot(batch) for batch in resumed]
    following = [snapshot(batch) for batch in resumed]
    for got, expected in zip(seen + rest, reference[0]):
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
    assert len(seen) + len(rest) == len(reference[0]) == 18
    for got, expected in zip(following, reference[1]):
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
    assert resumed.state_dict()['epoch'] == 2 and resumed.state_dict()['batch'] == 0


def test_a_state_of_another_version_is_refused(tmp_path):
    path = ids_file(str(tmp_path / 'ids.beton'), 40)
    loader = Loader(path, batch_size=8)
    state = loader.state_dict()
    assert state['version'] == 1
    with pytest.raises(ValueError, match=r"the state has version 99; this loader reads version 1 states"):
        loader.load_state_dict(dict(state, version=99))
    with pytest.raises(ValueError, match="not a Loader state: it has no 'version'"):
        loader.load_state_dict({k: v for k, v in state.items() if k != 'version'})


# ------------------------------------------------------------ a loader that yields nothing


def test_a_loader_that_will_yield_no_batch_says_so(tmp_path):
    path = ids_file(str(tmp_path / 'ids.beton'), 10)
    with pytest.warns(UserWarning, match=r"will yield no batch: its 10 samples are fewer than batch_size=16 and "
                                         r"drop_last=True drops the partial batch \(pass drop_last=False"):
        loader = Loader(path, batch_size=16)
    assert list(loader) == []
    with pytest.warns(UserWarning, match="will yield no batch: it has no samples"):
        Loader(path, batch_size=4, indices=[])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert len(list(Loader(path, batch_size=16, drop_last=False))) == 1


# ------------------------------------------------------------ buffers larger than the memory


def test_buffers_larger_than_the_memory_are_refused_before_allocation(tmp_path):
    path = str(tmp_path / 'big.beton')
    DatasetWriter(path, {'x': NDArrayField(np.dtype('u1'), (8 << 20,))}, page_size=16 << 20,
                  progress=False).from_indexed_dataset([(np.zeros(8 << 20, np.uint8),)] * 2)
    with open('/proc/meminfo') as f:
        available = next(int(line.split()[1]) * 1024 for line in f if line.startswith('MemAvailable:'))
    batch = available // (8 << 20) // 4 + 1                   # 5 slots of it: more than available
    loader = Loader(path, batch_size=batch, drop_last=False, num_workers=1)
    with pytest.raises(MemoryError, match=r"the loader's buffers would take .* GiB \(5 slots of \d+ samples\), "
                                          r"more than the .* GiB of memory available; the largest is "
                                          r"NDArrayDecoder\(\) of output 'x' with 8388608 bytes per sample"):
        iter(loader)
    assert os.path.exists(path)


# ------------------------------------------------------------ Ctrl-C in a training loop

CTRL_C_CHILD = '''
import sys, time
from ffcv_loader import Loader, OrderOption
from ffcv_ops import RandomResizedCropRGBImageDecoder
loader = Loader(sys.argv[1], batch_size=8, num_workers=2, order=OrderOption.RANDOM,
                pipelines={'image': [RandomResizedCropRGBImageDecoder((64, 64))]})
try:
    for epoch in range(10_000):
        for batch in loader:
            print('batch', flush=True)
            time.sleep(0.01)          # the training step
except KeyboardInterrupt:
    print('interrupted', loader.state_dict()['epoch'], flush=True)
    sys.exit(3)
'''


@pytest.mark.slow
def test_ctrl_c_stops_a_training_loop_in_seconds(tmp_path):
    path, _ = images_file(str(tmp_path / 'im.beton'), 200)
    child = subprocess.Popen([sys.executable, '-c', CTRL_C_CHILD, path], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(30):                   # well into the loop: workers busy, batches ahead
            assert child.stdout.readline() == 'batch\n'
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        child.kill()
    assert child.returncode == 3, (child.returncode, out[-500:])
    assert 'interrupted' in out
    assert took < 10, f'the loop took {took:.1f} s to stop after Ctrl-C'
