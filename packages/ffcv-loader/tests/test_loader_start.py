"""What a Loader does at start, in a fresh process: numba made ready (without scipy.linalg,
the garbage collector left on), and only the kernels of the pipeline's own operations
loaded (the crop and flip kernels when the first batch calls them; a decoder may load its
own when its code is generated). Large datasets get epoch 0's order computed while the
loader is made: the same order."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ffcv_loader import Loader, OrderOption, TraversalOrder
from ffcv_loader import loader as loader_module
from ffcv_loader.testing import images_file

CHILD = """
import gc, json, sys
scipy_before = 'scipy.linalg' in sys.modules
from numba.core.registry import CPUDispatcher
from ffcv_loader import Loader, OrderOption
from ffcv_ops import (Cutout, IntDecoder, RandomHorizontalFlip, RandomResizedCropRGBImageDecoder, ToTensor,
                      ToTorchImage)

def loaded_kernels():
    found = []
    for name, module in list(sys.modules.items()):
        if name.startswith('ffcv_ops.kernels.'):
            for attr, value in vars(module).items():
                if isinstance(value, CPUDispatcher) and value.__module__ == name and value.overloads:
                    found.append(name[len('ffcv_ops.kernels.'):] + '.' + attr)
    return sorted(found)

loader = Loader(sys.argv[1], batch_size=16, num_workers=2, order=OrderOption.RANDOM, seed=0,
                pipelines={'image': [RandomResizedCropRGBImageDecoder((32, 32)), Cutout(8), RandomHorizontalFlip(),
                                     ToTensor(), ToTorchImage()],
                           'label': [IntDecoder(), ToTensor()]})
# RandomHorizontalFlip's code: the kernels it calls (after Cutout: not fused into the decoder's call)
flip_code = loader.code[0][2]
flip_kernels = [flip_code.__globals__[name] for name in flip_code.__code__.co_names
                if isinstance(flip_code.__globals__.get(name), CPUDispatcher)]

def flip_loaded():
    return [k.__name__ for k in flip_kernels if k.overloads]

after_constructor, flip_after_constructor = loaded_kernels(), flip_loaded()
gc_enabled = gc.isenabled()
images, labels = next(iter(loader))
print(json.dumps(dict(scipy_before=scipy_before, scipy_after='scipy.linalg' in sys.modules,
                      after_constructor=after_constructor, after_batch=loaded_kernels(),
                      flip_after_constructor=flip_after_constructor, flip_after_batch=flip_loaded(),
                      gc_enabled=gc_enabled, shape=list(images.shape))))
"""

#: kernel modules of operations the pipeline above does not have
UNRELATED = ('affine.', 'blur.', 'color.', 'color_jitter.', 'cutmix.', 'erasing.', 'mixup.', 'pixel.',
             'policy_ops.', 'targeted.', 'vertical_flip.')


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    path, _ = images_file(str(tmp_path_factory.mktemp('start') / 'images.beton'), 40)
    return path


def test_loader_start_loads_only_the_kernels_its_pipelines_use(images):
    done = subprocess.run([sys.executable, '-c', textwrap.dedent(CHILD), images], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result['shape'] == [16, 3, 32, 32]
    assert result['flip_after_constructor'] == []      # a kernel loads when first called
    assert result['flip_after_batch']
    assert set(result['after_constructor']) <= set(result['after_batch'])
    assert not [k for k in result['after_batch'] if k.startswith(UNRELATED)], result['after_batch']
    assert result['gc_enabled']
    if not result['scipy_before']:
        assert not result['scipy_after']               # numba started without scipy.linalg


# ---------------------------------------------------------------- epoch 0's order, computed ahead

@pytest.fixture(scope='module')
def ids(tmp_path_factory):
    from ffcv_loader.testing import ids_file
    return ids_file(str(tmp_path_factory.mktemp('ids') / 'ids.beton'), 500)


def epochs_of(loader, count):
    return [np.concatenate([b[0][:, 0].numpy().copy() for b in loader]) for _ in range(count)]


@pytest.mark.parametrize('order', [OrderOption.RANDOM, OrderOption.QUASI_RANDOM])
def test_the_order_computed_ahead_is_the_order(ids, order, monkeypatch):
    def make(ahead, **kwargs):
        monkeypatch.setattr(loader_module, '_ORDER_AHEAD_SAMPLES', 0 if ahead else 1 << 62)
        loader = Loader(ids, batch_size=32, num_workers=2, order=order, seed=7, drop_last=False, **kwargs)
        assert (loader._order_ahead is not None) == ahead
        return loader

    ahead = make(True)
    computed = ahead._order_ahead
    computed.thread.join()
    assert computed.result is not None
    assert computed.take(ahead.traversal_order, 1) is None              # not the epoch wanted
    assert_equal_epochs(epochs_of(ahead, 2), epochs_of(make(False), 2))
    assert_equal_epochs(epochs_of(make(True, indices=np.arange(0, 500, 3)), 1),
                        epochs_of(make(False, indices=np.arange(0, 500, 3)), 1))
    # resumed elsewhere before the first epoch: another epoch, another seed
    state = make(False).state_dict()
    state.update(epoch=3, seed=11)
    resumed, reference = make(True), make(False)
    resumed.load_state_dict(state)
    reference.load_state_dict(state)
    assert_equal_epochs(epochs_of(resumed, 1), epochs_of(reference, 1))


def test_an_application_order_is_not_computed_ahead(ids, monkeypatch):
    monkeypatch.setattr(loader_module, '_ORDER_AHEAD_SAMPLES', 0)

    class Backwards(TraversalOrder):
        def sample_order(self, epoch):
            return self.shard(self.indices[::-1])

    loader = Loader(ids, batch_size=50, num_workers=1, order=Backwards, seed=0)
    assert loader._order_ahead is None
    assert epochs_of(loader, 1)[0].tolist() == list(range(499, -1, -1))


def assert_equal_epochs(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
