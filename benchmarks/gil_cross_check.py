"""A second way to measure the GIL the loader's worker threads hold per image, and why it is
what it is.

    python benchmarks/gil_cross_check.py BETON [BETON ...] [--epochs 3] [--workers 1]

For each file (a JPEG image field and an int label field, e.g. the suite's 256- and 512-px
files), with the suite's JPEG pipeline (random resized crop 224 + flip, uint8 NCHW; labels):

1. **Python time per image in the worker threads**, from CPU clocks rather than sampling: the
   CPU time of every thread but the main one (process CPU time minus the main thread's), less
   the CPU time spent inside the compiled per-chunk calls (each call wrapped, timed with the
   calling thread's CPU clock, the wrapper's own cost measured and removed). What remains is
   Python (and C called from it), which runs holding the GIL. It counts CPU time, not
   wall time, so a thread preempted while it holds the GIL is not counted: a lower bound of
   what ``py-spy record --gil`` samples (the suite's ``gil`` rows).
2. **The same Python, warm and cold**: a fixed piece of plain Python (a 20-entry dict of
   tuples) timed with the thread's CPU clock right after each chunk's compiled call returns,
   against the same piece in a loop on the main thread. After a call that streamed a chunk's
   images through the caches, Python runs slower.

Nothing here asserts a time; the figures depend on the machine.
"""
import argparse
import os
import sys
import threading
import time

import numpy as np

# the decoders' compiled calls: one chunk (decode_chunk) or, with a chunk ring, every chunk a
# worker thread claims until it returns (claim_and_decode)
_COMPILED_CALLS = [('ffcv_ops.decoders.image', 'decode_chunk'), ('ffcv_ops.decoders.image', 'claim_and_decode'),
                   ('ffcv_ops.decoders.basics', 'gather_scalars')]


def plain_python():
    """The fixed piece of Python whose cost is compared warm and cold."""
    table = {}
    for k in range(20):
        table[k] = (k, str(k))
    return len(table)


class CallClock:
    """Wraps the compiled per-chunk calls: CPU time inside them per thread, and the cost of
    ``plain_python`` right after each (for the calls named ``cold_after``)."""

    def __init__(self, cold_after=('decode_chunk', 'claim_and_decode')):
        self.inside = {}        # thread id -> [nanoseconds, calls]
        self.cold = []          # plain_python's CPU nanoseconds right after a call
        self.cold_after = cold_after
        self.measure_cold = False

    def wrap(self, function, name):
        inside, cold = self.inside, self.cold

        def timed(*args):
            start = time.thread_time_ns()
            result = function(*args)
            end = time.thread_time_ns()
            record = inside.setdefault(threading.get_ident(), [0, 0])
            record[0] += end - start
            record[1] += 1
            if self.measure_cold and name in self.cold_after:
                t0 = time.thread_time_ns()
                plain_python()
                cold.append(time.thread_time_ns() - t0)
            return result

        return timed

    def install(self):
        import importlib
        for module_name, attribute in _COMPILED_CALLS:
            module = importlib.import_module(module_name)
            setattr(module, attribute, self.wrap(getattr(module, attribute), attribute))

    def wrapper_cost_ns(self, calls=20000):
        """CPU time of the wrapper itself around a call doing nothing."""
        timed = CallClock().wrap(lambda *a: None, 'nothing')
        start = time.thread_time_ns()
        for _ in range(calls):
            timed(1, 2, 3)
        return (time.thread_time_ns() - start) / calls


def make_loader(path, workers):
    from ffcv.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import RandomHorizontalFlip, ToTensor, ToTorchImage
    return Loader(path, batch_size=256, num_workers=workers, order=OrderOption.RANDOM, os_cache=True, seed=0,
                  pipelines={'image': [RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip(),
                                       ToTensor(), ToTorchImage()],
                             'label': [IntDecoder(), ToTensor()]})


def measure(path, clock, epochs, workers):
    loader = make_loader(path, workers)
    for _ in loader:            # warm-up epoch: kernels loaded, pages in the page cache
        pass
    clock.inside.clear()
    clock.cold.clear()
    clock.measure_cold = False
    main = threading.get_ident()
    others_before = time.process_time_ns() - time.thread_time_ns()
    wall = time.perf_counter()
    images = 0
    for _ in range(epochs):
        for images_batch, _labels in loader:
            images += images_batch.shape[0]
    wall = time.perf_counter() - wall
    others = time.process_time_ns() - time.thread_time_ns() - others_before
    inside = sum(ns for tid, (ns, _) in clock.inside.items() if tid != main)
    calls = sum(n for tid, (_, n) in clock.inside.items() if tid != main)
    python = others - inside - calls * clock.wrapper_cost_ns()
    # the plain Python right after the chunks' calls (one more epoch), then warm
    clock.measure_cold = True
    for _ in loader:
        pass
    clock.measure_cold = False
    warm = []
    for _ in range(len(clock.cold)):
        t0 = time.thread_time_ns()
        plain_python()
        warm.append(time.thread_time_ns() - t0)
    loader.close()
    return dict(images=images, rate=images / wall, worker_cpu_us=others / images / 1e3,
                compiled_us=inside / images / 1e3, python_us=python / images / 1e3, calls=calls,
                cold_us=float(np.median(clock.cold)) / 1e3, warm_us=float(np.median(warm)) / 1e3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('betons', nargs='+')
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--workers', type=int, default=1)
    args = parser.parse_args(argv)
    clock = CallClock()
    clock.install()
    for path in args.betons:
        r = measure(path, clock, args.epochs, args.workers)
        print(f"{os.path.basename(path)}: {r['images']} images, {r['rate']:.0f} images/s, {args.workers} worker(s)")
        print(f"  worker threads' CPU per image {r['worker_cpu_us']:.1f} us: inside the compiled calls "
              f"{r['compiled_us']:.1f} us ({r['calls']} calls), Python {r['python_us']:.2f} us")
        print(f"  plain Python right after a chunk's compiled call: {r['cold_us']:.2f} us; the same in a warm loop: "
              f"{r['warm_us']:.2f} us ({r['cold_us'] / r['warm_us']:.1f}x)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
