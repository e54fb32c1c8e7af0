"""Loader throughput on ImageNet-like JPEGs: this loader, a PyTorch DataLoader, the decode ceiling.

    python benchmarks/loader_throughput.py [--images 3000] [--epochs 5] [--workers N]

What it does, all in one run (the machine is noisy: read the ratios):
  1. generates an ImageNet-like JPEG folder from real photos (benchmarks/imagenet_like.py;
     cached under --cache-dir), and converts it once into a .beton with
     RGBImageField(write_mode='jpg', max_resolution=256, jpeg_quality=90) and IntField
     (cached next to it);
  2. measures, each contender in its own fresh process, a warm-up epoch and then the median
     images/s over --epochs epochs:
     (a) ffcv_loader.Loader, batch 256, num_workers = all cores, order RANDOM, image pipeline
         RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip(), ToTensor(),
         ToTorchImage() (uint8 NCHW batches);
     (b) torch.utils.data.DataLoader with PIL doing the same augmentation (random resized crop
         to 224, scale (0.08, 1), ratio (3/4, 4/3), bilinear; horizontal flip; uint8 CHW
         tensors) on the original JPEG files, batch 256, shuffle, as many worker processes as
         (a) has threads, persistent workers;
     (c) the decode ceiling: one thread (cv2.setNumThreads(1)) running cv2.imdecode +
         crop-resize (INTER_AREA to 224x224 of a random-resized-crop box) + flip on the JPEG
         bytes stored in the .beton, into a batch buffer; its rate times the number of threads.
         (For information, also the same loop run by that many threads at once.)
  3. prints the ratios (a)/(b) (target >= 4x) and (a)/(c) (target >= 0.90), the time from
     Loader(...) to the first batch in a fresh process (numba cache warm by then), and peak
     memory of each contender's process tree.

Memory: a sampler in this process reads, every 0.1 s, VmRSS (/proc/PID/status) and Pss
(/proc/PID/smaps_rollup) of the contender's process and all its descendants. "peak RSS" is
the contender's main process alone (exact: VmHWM); "tree RSS" the peak of
the sum of RSS over the process and its worker processes (counts pages shared between
forked workers once per process, so it overstates a DataLoader); "tree PSS" the peak of the
sum of PSS (shared pages divided among the processes sharing them: the fairest total). The
memory after imports (torch, numba, ...), before any loading, is printed for reference.

Nothing here asserts a time; it prints.
"""
import argparse
import datetime
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT_PREFIX = 'RESULT '
OUTPUT_SIZE = 224
SCALE = (0.08, 1.0)
RATIO = (3 / 4, 4 / 3)


# --------------------------------------------------------------------------- shared helpers

def rrc_box(rand, width, height, scale=SCALE, ratio=RATIO):
    """A random-resized-crop box ``(x, y, w, h)``, sampled as torchvision samples it.

    ``rand`` is a ``random.Random``. Ten tries at a random area fraction in ``scale`` and
    log-uniform aspect ratio in ``ratio``; then the largest centred crop within ``ratio``.
    """
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target_area = area * rand.uniform(scale[0], scale[1])
        aspect = math.exp(rand.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rand.randint(0, width - w), rand.randint(0, height - h), w, h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def all_cores():
    return len(os.sched_getaffinity(0))


def _self_status_bytes(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def current_rss_bytes():
    return _self_status_bytes('VmRSS:')


def peak_rss_bytes():
    """This process's high-water RSS. Not getrusage's ru_maxrss: on Linux that survives
    exec, so a child would report its parent's peak at fork time."""
    return _self_status_bytes('VmHWM:')


def emit(result):
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- (a) this loader

def make_loader(path, spec):
    from ffcv_loader import Loader, OrderOption
    from ffcv_ops import (IntDecoder, RandomHorizontalFlip, RandomResizedCropRGBImageDecoder,
                          ToTensor, ToTorchImage)
    return Loader(path, batch_size=spec['batch_size'], num_workers=spec['workers'],
                  order=OrderOption.RANDOM,
                  pipelines={'image': [RandomResizedCropRGBImageDecoder((OUTPUT_SIZE, OUTPUT_SIZE)),
                                       RandomHorizontalFlip(), ToTensor(), ToTorchImage()],
                             'label': [IntDecoder(), ToTensor()]})


LOADER_IMPORTS = ['torch', 'ffcv_loader', 'ffcv_ops']


def import_all(names):
    import importlib
    for name in names:
        importlib.import_module(name)


def time_epoch(loader):
    """Images per second of one pass over ``loader``, the batches left untouched."""
    start = time.perf_counter()
    count = 0
    for images, _labels in loader:
        count += images.shape[0]
    return {'rate': count / (time.perf_counter() - start), 'images': count}


class LoaderContender:
    """(a): ffcv_loader.Loader with the RRC + flip pipeline, uint8 NCHW batches."""

    def __init__(self, spec):
        self.spec = spec

    def warmup(self):
        t0 = time.perf_counter()
        import_all(LOADER_IMPORTS)  # torch comes with the loader anyway: counted here
        import_s = time.perf_counter() - t0
        rss_after_imports = current_rss_bytes()
        start = time.perf_counter()
        self.loader = make_loader(self.spec['beton'], self.spec)
        iterator = iter(self.loader)
        images, labels = next(iterator)
        first_batch_s = time.perf_counter() - start
        shape, dtype, label_shape = list(images.shape), str(images.dtype), list(labels.shape)
        count = images.shape[0]
        for images, labels in iterator:
            count += images.shape[0]
        warmup_s = time.perf_counter() - start
        return dict(import_s=import_s, first_batch_s=first_batch_s, warmup_rate=count / warmup_s,
                    images_per_epoch=count, shape=shape, dtype=dtype, label_shape=label_shape,
                    rss_after_imports=rss_after_imports)

    def epoch(self):
        return time_epoch(self.loader)


def run_first_batch(spec):
    """A fresh process: imports, then Loader(...) to the first batch, and nothing else."""
    t0 = time.perf_counter()
    import_all(LOADER_IMPORTS)
    import_s = time.perf_counter() - t0
    start = time.perf_counter()
    loader = make_loader(spec['beton'], spec)
    next(iter(loader))
    first_batch_s = time.perf_counter() - start
    emit({'import_s': import_s, 'first_batch_s': first_batch_s})


# --------------------------------------------------------------------------- (b) DataLoader + PIL

class PILRandomResizedCropFlip:
    """Map-style dataset: original JPEG -> PIL random resized crop + flip -> uint8 CHW tensor.

    What torchvision's RandomResizedCrop(224) + RandomHorizontalFlip() + PILToTensor() do,
    written out (torchvision is not installed here): PIL decodes the whole file, resizes the
    box with a bilinear (antialiased) filter, mirrors half of the crops.
    """

    def __init__(self, paths, labels):
        self.paths, self.labels = paths, labels
        self.rand = random.Random()  # reseeded per worker by _worker_init

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        import torch
        from PIL import Image
        with Image.open(self.paths[index]) as image:
            image = image.convert('RGB')
        x, y, w, h = rrc_box(self.rand, image.width, image.height)
        image = image.resize((OUTPUT_SIZE, OUTPUT_SIZE), resample=Image.BILINEAR, box=(x, y, x + w, y + h))
        if self.rand.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        array = np.array(image, dtype=np.uint8, copy=True)
        return torch.from_numpy(array).permute(2, 0, 1), self.labels[index]


def _worker_init(worker_id):
    import torch
    from torch.utils.data import get_worker_info
    get_worker_info().dataset.rand.seed(torch.initial_seed() % 2**32)


class DataLoaderContender:
    """(b): torch DataLoader, PIL augmentation in worker processes, on the original files."""

    def __init__(self, spec):
        self.spec = spec

    def warmup(self):
        spec = self.spec
        t0 = time.perf_counter()
        import torch
        from torch.utils.data import DataLoader
        import_all(['PIL.Image'])
        import_s = time.perf_counter() - t0
        rss_after_imports = current_rss_bytes()
        sys.path.insert(0, HERE)
        from imagenet_like import class_index, make_image_folder
        paths = make_image_folder(spec['root'], spec['images'], spec['classes'], spec['seed'])
        dataset = PILRandomResizedCropFlip(paths, [class_index(p) for p in paths])
        torch.manual_seed(spec['seed'])
        start = time.perf_counter()
        # persistent workers: later epochs do not pay for starting processes (the
        # DataLoader's best case; its default, False, restarts them every epoch)
        self.loader = DataLoader(dataset, batch_size=spec['batch_size'], shuffle=True,
                                 num_workers=spec['workers'], drop_last=True,
                                 persistent_workers=spec['workers'] > 0, worker_init_fn=_worker_init)
        iterator = iter(self.loader)
        images, labels = next(iterator)
        first_batch_s = time.perf_counter() - start
        shape, dtype = list(images.shape), str(images.dtype)
        count = images.shape[0]
        for images, labels in iterator:
            count += images.shape[0]
        warmup_s = time.perf_counter() - start
        return dict(import_s=import_s, first_batch_s=first_batch_s, warmup_rate=count / warmup_s,
                    images_per_epoch=count, shape=shape, dtype=dtype, rss_after_imports=rss_after_imports)

    def epoch(self):
        return time_epoch(self.loader)


# --------------------------------------------------------------------------- (c) decode ceiling

def stored_jpegs(path):
    """The JPEG bytes of every image stored in the .beton at ``path`` (read-only views)."""
    from ffcv_format import Reader
    from ffcv_format.fields.image import MODE_JPEG
    reader = Reader(path)
    meta = reader.metadata['image']
    if not np.all(meta['mode'] == MODE_JPEG):
        raise ValueError(f"{path}: not every image is stored as JPEG")
    return reader, [reader.read(int(ptr), reader.allocation_size(int(ptr))) for ptr in meta['data_ptr']]


def decode_crop_flip(cv2, jpegs, order, rand, batch, scratch):
    """The per-image work of the loader, in plain OpenCV calls, into a batch buffer."""
    flag = getattr(cv2, 'IMREAD_COLOR_RGB', cv2.IMREAD_COLOR)  # RGB straight from the decoder
    batch_size = len(batch)
    for k, index in enumerate(order):
        image = cv2.imdecode(jpegs[index], flag)
        x, y, w, h = rrc_box(rand, image.shape[1], image.shape[0])
        slot = batch[k % batch_size]
        if rand.random() < 0.5:
            cv2.resize(image[y:y + h, x:x + w], (OUTPUT_SIZE, OUTPUT_SIZE), dst=scratch,
                       interpolation=cv2.INTER_AREA)
            cv2.flip(scratch, 1, dst=slot)
        else:
            cv2.resize(image[y:y + h, x:x + w], (OUTPUT_SIZE, OUTPUT_SIZE), dst=slot,
                       interpolation=cv2.INTER_AREA)


class CeilingContender:
    """(c): one thread of plain OpenCV decode + crop-resize + flip over the stored JPEGs."""

    def __init__(self, spec):
        import cv2
        cv2.setNumThreads(1)  # the single-thread rate: no OpenCV thread pool inside resize
        self.cv2, self.spec = cv2, spec
        self.reader, self.jpegs = stored_jpegs(spec['beton'])
        self.rng = np.random.default_rng(spec['seed'])
        self.rand = random.Random(spec['seed'])
        self.batch, self.scratch = self._buffers()

    def _buffers(self):
        return (np.empty((self.spec['batch_size'], OUTPUT_SIZE, OUTPUT_SIZE, 3), np.uint8),
                np.empty((OUTPUT_SIZE, OUTPUT_SIZE, 3), np.uint8))

    def warmup(self):
        rate = self.epoch()['rate']
        return {'warmup_rate': rate * self.spec['workers'], 'images_per_epoch': len(self.jpegs),
                'rss_after_imports': None}

    def epoch(self):
        """One thread over every stored image in a random order; ``rate`` is times the threads."""
        order = self.rng.permutation(len(self.jpegs))
        start = time.perf_counter()
        decode_crop_flip(self.cv2, self.jpegs, order, self.rand, self.batch, self.scratch)
        single = len(order) / (time.perf_counter() - start)
        return {'rate': single * self.spec['workers'], 'single_thread_rate': single, 'images': len(order)}

    def parallel(self):
        """For information: the same loop in ``workers`` threads at once, each on its share."""
        order = self.rng.permutation(len(self.jpegs))
        work = [(share, random.Random(self.rand.random()), *self._buffers())
                for share in np.array_split(order, self.spec['workers'])]
        threads = [threading.Thread(target=decode_crop_flip, args=(self.cv2, self.jpegs, *w)) for w in work]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {'rate': len(order) / (time.perf_counter() - start)}


CONTENDERS = {'loader': LoaderContender, 'dataloader': DataLoaderContender, 'ceiling': CeilingContender}
COMMANDS = ('warmup', 'epoch', 'parallel', 'finish')


def serve(kind, spec):
    """Child side: build the contender, then run the commands the parent sends on stdin."""
    if kind == 'first_batch':
        run_first_batch(spec)
        return
    contender = CONTENDERS[kind](spec)
    for line in sys.stdin:
        command = line.strip()
        if command == 'finish':
            emit({'peak_rss': peak_rss_bytes()})
            return
        if command not in COMMANDS or not hasattr(contender, command):
            raise ValueError(f"unknown command {command!r} for {kind}")
        emit(getattr(contender, command)())


# --------------------------------------------------------------------------- the parent

class TreeMemorySampler(threading.Thread):
    """Samples the summed RSS of a process and its descendants (every 50 ms) until stopped.

    :meth:`read_pss` adds up their PSS now; it costs about 10 ms of kernel time per process
    (the kernel walks the page tables), too much to do while another process is timed, so
    the parent calls it only between timed epochs.
    """

    def __init__(self, pid, interval=0.05):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self.peak_processes = 0
        self._stop_event = threading.Event()

    @staticmethod
    def _tree(pid):
        pids, todo = [], [pid]
        while todo:
            p = todo.pop()
            pids.append(p)
            try:
                for task in os.listdir(f'/proc/{p}/task'):
                    with open(f'/proc/{p}/task/{task}/children') as f:
                        todo += [int(c) for c in f.read().split()]
            except OSError:
                pass
        return pids

    @staticmethod
    def _kib(path, key):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def read_pss(self):
        pids = self._tree(self.pid)
        pss = sum(self._kib(f'/proc/{p}/smaps_rollup', 'Pss:') for p in pids) * 1024
        self.peak_pss = max(self.peak_pss, pss)
        return pss

    def run(self):
        while not self._stop_event.wait(self.interval):
            pids = self._tree(self.pid)
            rss = sum(self._kib(f'/proc/{p}/status', 'VmRSS:') for p in pids) * 1024
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_processes = max(self.peak_processes, len(pids))

    def stop(self):
        self._stop_event.set()
        self.join()


class ContenderProcess:
    """Parent side of one contender: a fresh Python process that runs commands on request."""

    def __init__(self, kind, spec, timeout):
        import tempfile
        self.kind, self.timeout = kind, timeout
        self.stderr = tempfile.TemporaryFile(mode='w+')
        command = [sys.executable, os.path.abspath(__file__), '--child', kind, '--spec', json.dumps(spec)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, text=True, bufsize=1)
        self.sampler = TreeMemorySampler(self.process.pid)
        self.sampler.start()
        self.error = None
        self._lines = __import__('queue').Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self):
        for line in self.process.stdout:
            if line.startswith(RESULT_PREFIX):
                self._lines.put(json.loads(line[len(RESULT_PREFIX):]))
        self._lines.put(None)

    def _fail(self, why):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.stderr.seek(0)
        tail = '\n'.join(self.stderr.read().strip().splitlines()[-6:])
        self.error = f"{why}:\n{tail}" if tail else why
        self.sampler.stop()
        return None

    def result(self):
        """The next result the child emits (None, with ``self.error`` set, if it failed)."""
        import queue
        if self.error:
            return None
        try:
            result = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            return self._fail(f"no answer within {self.timeout} s")
        if result is None:
            return self._fail(f"exit status {self.process.wait()}")
        return result

    def call(self, command):
        if self.error:
            return None
        try:
            self.process.stdin.write(command + '\n')
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._fail(f"exit status {self.process.wait()}")
        return self.result()

    def finish(self):
        result = self.call('finish')
        if result is None:
            return None
        self.process.stdin.close()
        self.process.wait(timeout=self.timeout)
        self.sampler.stop()
        self.stderr.close()
        result.update(tree_rss=self.sampler.peak_rss, tree_pss=self.sampler.peak_pss,
                      processes=self.sampler.peak_processes)
        return result


def convert(paths, beton, max_resolution, quality):
    """Write the .beton (image, label) from the original files; the seconds it took."""
    import cv2
    from ffcv_format import DatasetWriter, IntField, RGBImageField
    from imagenet_like import class_index

    class OriginalFiles:
        def __len__(self):
            return len(paths)

        def __getitem__(self, index):
            image = cv2.imread(paths[index], cv2.IMREAD_COLOR_RGB)
            return image, class_index(paths[index])

    writer = DatasetWriter(beton, {'image': RGBImageField(write_mode='jpg', max_resolution=max_resolution,
                                                          jpeg_quality=quality),
                                   'label': IntField()}, progress=False, overwrite=True)
    start = time.perf_counter()
    writer.from_indexed_dataset(OriginalFiles())
    return time.perf_counter() - start


def cached_beton(root, max_resolution, quality):
    """The .beton converted from the folder at ``root``; converted again if the folder changed."""
    with open(os.path.join(root, '.imagenet_like.json'), 'rb') as f:
        folder_digest = __import__('hashlib').sha256(f.read()).hexdigest()
    beton = f"{root}_max{max_resolution}_q{quality}.beton"
    stamp_path = beton + '.json'
    try:
        with open(stamp_path) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        stamp = None
    if stamp == {'folder': folder_digest} and os.path.exists(beton):
        return beton, None
    return beton, (folder_digest, stamp_path)


def versions():
    found = {'python': platform.python_version()}
    for name in ('numpy', 'numba', 'cv2', 'torch', 'PIL', 'skimage', 'sklearn',
                 'ffcv_format', 'ffcv_ops', 'ffcv_loader'):
        try:
            module = __import__(name)
            found[name] = getattr(module, '__version__', '?')
        except Exception:
            found[name] = 'not installed'
    return found


def cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or '?'


def mib(nbytes):
    return f"{nbytes / 2**20:,.0f} MiB" if nbytes else '-'


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=3000, help='images in the generated folder (default 3000)')
    parser.add_argument('--classes', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--epochs', type=int, default=5,
                        help='timed rounds (one epoch of each contender) after a warm-up epoch; '
                             'medians are reported (default 5)')
    parser.add_argument('--workers', type=int, default=all_cores(),
                        help='loader threads = DataLoader worker processes = ceiling multiplier (default: all cores)')
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--max-resolution', type=int, default=256)
    parser.add_argument('--quality', type=int, default=90)
    parser.add_argument('--only', default='ceiling,loader,dataloader,first_batch',
                        help='comma-separated subset of: ceiling, loader, dataloader, first_batch')
    parser.add_argument('--cache-dir', default=os.environ.get('FFCV_BENCH_CACHE',
                                                              os.path.expanduser('~/.cache/ffcv-benchmarks')),
                        help='where the image folder and .beton are kept between runs '
                             '(default $FFCV_BENCH_CACHE or ~/.cache/ffcv-benchmarks)')
    parser.add_argument('--timeout', type=int, default=900,
                        help='seconds a contender may take to answer (one warm-up or epoch)')
    parser.add_argument('--child', choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument('--spec', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(args.child, json.loads(args.spec))
        return

    sys.path.insert(0, HERE)
    from imagenet_like import describe, make_image_folder

    cores = all_cores()
    print(f"loader_throughput  {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"machine: {cores} cores available ({os.cpu_count()} online), {cpu_model()}, "
          f"{platform.system()} {platform.release()}")
    print("versions: " + ', '.join(f"{k} {v}" for k, v in versions().items()))
    print(f"settings: batch {args.batch_size}, {args.workers} loader threads / DataLoader workers, "
          f"warm-up epoch + median of {args.epochs} epochs, RRC {OUTPUT_SIZE}x{OUTPUT_SIZE} "
          f"scale {SCALE} ratio (3/4, 4/3) + flip, uint8 NCHW")

    os.makedirs(args.cache_dir, exist_ok=True)
    root = os.path.join(args.cache_dir, f"imagenet_like_n{args.images}_c{args.classes}_s{args.seed}")
    start = time.perf_counter()
    paths = make_image_folder(root, args.images, args.classes, args.seed)
    print(f"\nimage folder {root} [{time.perf_counter() - start:.1f} s]\n  {describe(root)}")

    beton, stale = cached_beton(root, args.max_resolution, args.quality)
    if stale is None:
        print(f".beton {beton} (cached)")
    else:
        seconds = convert(paths, beton, args.max_resolution, args.quality)
        with open(stale[1], 'w') as f:
            json.dump({'folder': stale[0]}, f)
        print(f".beton {beton}: converted in {seconds:.1f} s ({len(paths) / seconds:,.0f} images/s, "
              f"{args.workers} writer threads)")
    from ffcv_format import Reader
    with Reader(beton) as reader:
        meta = reader.metadata['image']
        jpeg_bytes = [reader.allocation_size(int(ptr)) for ptr in meta['data_ptr']]
        print(f"  {reader.num_samples} samples, file {os.path.getsize(beton) / 2**20:.1f} MiB; stored JPEGs "
              f"median {int(np.median(meta['width']))}x{int(np.median(meta['height']))}, "
              f"{np.mean(jpeg_bytes) / 1024:.1f} KiB on average ({np.sum(jpeg_bytes) / 2**20:.1f} MiB in all)")

    spec = dict(beton=beton, root=root, images=args.images, classes=args.classes, seed=args.seed,
                workers=args.workers, batch_size=args.batch_size)
    wanted = [k.strip() for k in args.only.split(',') if k.strip()]
    unknown = set(wanted) - set(KINDS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; choose from {list(KINDS)}")
    results = measure(spec, wanted, args.epochs, args.timeout)
    report(results, args, beton)


KINDS = ('loader', 'dataloader', 'ceiling', 'first_batch')


def cpu_counters():
    """(wall seconds, CPU seconds busy on the whole machine, CPU seconds of this process and
    its waited-for descendants): their differences show how much others used the cores."""
    with open('/proc/stat') as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    machine = (user + nice + system + irq + softirq + steal) / os.sysconf('SC_CLK_TCK')
    t = os.times()
    return time.perf_counter(), machine, t.user + t.system + t.children_user + t.children_system


def measure(spec, wanted, epochs, timeout):
    """Warm every contender up, then time them in interleaved rounds; then the first batch.

    Each contender lives in its own process for the whole measurement and idles between
    its epochs, so one round gives each an epoch within seconds of the others: load from
    elsewhere on a shared machine then hits the contenders alike, and the per-round ratios
    stay meaningful. The order within a round rotates.
    """
    results = {kind: {} for kind in wanted}
    live = {}
    cpu_before = cpu_counters()
    try:
        for kind in (k for k in ('ceiling', 'loader', 'dataloader') if k in wanted):
            print(f"warming up {kind} ...", flush=True)
            process = ContenderProcess(kind, spec, timeout)
            warm = process.call('warmup')
            if warm is None:
                results[kind]['error'] = process.error
                continue
            results[kind].update(warm, rates=[], parallel_rates=[], single_thread_rates=[])
            live[kind] = process
        order = list(live)
        for round_index in range(epochs if live else 0):
            print(f"round {round_index + 1}/{epochs}: " + ', '.join(order), flush=True)
            for kind in order:
                process = live[kind]
                answer = process.call('epoch')
                if answer is None:
                    results[kind]['error'] = process.error
                    continue
                results[kind]['rates'].append(answer['rate'])
                if kind == 'ceiling':
                    results[kind]['single_thread_rates'].append(answer['single_thread_rate'])
                    parallel = process.call('parallel')
                    if parallel is not None:
                        results[kind]['parallel_rates'].append(parallel['rate'])
            for kind in list(live):  # between epochs, so that its cost times nobody
                if live[kind].error:
                    del live[kind]
                    order.remove(kind)
                else:
                    live[kind].sampler.read_pss()
            order = order[1:] + order[:1]
        for kind, process in live.items():
            final = process.finish()
            if final is None:
                results[kind]['error'] = process.error
            else:
                results[kind].update(final)
        live.clear()
        results['cpu'] = [after - before for after, before in zip(cpu_counters(), cpu_before)]
    finally:
        for process in live.values():
            if process.process.poll() is None:
                process.process.kill()
    if 'first_batch' in wanted:
        print("first batch in a fresh process ...", flush=True)
        process = ContenderProcess('first_batch', spec, timeout)
        answer = process.result()
        if answer is None:
            results['first_batch']['error'] = process.error
        else:
            results['first_batch'].update(answer)
            process.process.stdin.close()
            process.process.wait()
            process.sampler.stop()
    for kind in KINDS:
        result = results.get(kind, {})
        if result.get('rates'):
            result['rate'] = statistics.median(result['rates'])
    return results


def report(results, args, beton):
    w = args.workers

    def ok(kind):
        return kind in results and 'error' not in results[kind] and results[kind].get('rates') is not None

    rows = [('loader', f"(a) ffcv_loader.Loader, {w} threads"),
            ('dataloader', f"(b) DataLoader + PIL, {w} worker processes"),
            ('ceiling', f"(c) decode ceiling, {w} x 1 thread")]
    print(f"\n{'images/s':>53} {'per round':>30} {'warm-up':>8} {'1st batch':>9} "
          f"{'peak RSS':>9} {'tree RSS':>9} {'tree PSS':>9} {'RSS after imports':>17}")
    for kind, label in rows:
        if kind not in results:
            continue
        r = results[kind]
        if 'error' in r:
            print(f"{label:44} not available: {r['error']}")
            continue
        rounds = ' '.join(f"{x:,.0f}" for x in r['rates'])
        first = f"{r['first_batch_s']:.2f} s" if 'first_batch_s' in r else '-'
        print(f"{label:44} {r['rate']:8,.0f} {rounds:>30} {r['warmup_rate']:8,.0f} {first:>9} "
              f"{mib(r.get('peak_rss')):>9} {mib(r.get('tree_rss')):>9} {mib(r.get('tree_pss')):>9} "
              f"{mib(r.get('rss_after_imports')):>17}")
    if ok('ceiling'):
        c = results['ceiling']
        print(f"    (c) = {w} x {statistics.median(c['single_thread_rates']):,.0f} images/s of one thread; "
              f"the same loop in {w} threads at once: {statistics.median(c['parallel_rates']):,.0f} images/s "
              f"(for information)")
    if ok('loader'):
        a = results['loader']
        print(f"    (a) batches: images {a['shape']} {a['dtype']}, labels {a['label_shape']}; "
              f"{a['images_per_epoch']} images per epoch; imports {a['import_s']:.2f} s")

    if 'cpu' in results:
        wall, machine, ours = results['cpu']
        others = max(0.0, machine - ours)
        print(f"    while measuring ({wall:.0f} s): the machine's cores were busy {machine / wall / all_cores():.0%} "
              f"of the time; this benchmark used {ours:.0f} CPU-seconds, other processes {others:.0f} "
              f"({others / wall:.2f} cores on average; on a shared host that includes work invisible to ps): "
              f"figures from a loaded machine are noisy, ratios less so")

    print("\nratios, this run (median of rounds; per-round ratios in brackets)")

    def ratio(numerator, denominator, label, target):
        if not (ok(numerator) and ok(denominator)):
            print(f"  {label}:  n/a (a contender did not run)")
            return
        a, b = results[numerator], results[denominator]
        per_round = [x / y for x, y in zip(a['rates'], b['rates'])]
        print(f"  {label}:  {a['rate'] / b['rate']:5.2f}   target {target}   "
              f"[{' '.join(f'{x:.2f}' for x in per_round)}; best round / best round "
              f"{max(a['rates']) / max(b['rates']):.2f}]")

    ratio('loader', 'dataloader', "(a) / (b)  loader / DataLoader+PIL", ">= 4 (DESIGN.md: 4.5)")
    ratio('loader', 'ceiling', "(a) / (c)  loader / decode ceiling", ">= 0.90")
    if ok('loader') and ok('ceiling') and results['ceiling']['parallel_rates']:
        parallel = statistics.median(results['ceiling']['parallel_rates'])
        print(f"  (a) / the ceiling loop run in {w} threads at once: {results['loader']['rate'] / parallel:.2f} "
              f"(for information: when other processes take CPU, {w} x one thread overstates what "
              f"{w} threads can get)")
    first = results.get('first_batch')
    if first is not None and 'error' not in first:
        print(f"  time to first batch, fresh process, numba cache warm: {first['first_batch_s']:.2f} s "
              f"from Loader(...) (target < 2 s), after {first['import_s']:.2f} s of imports")
    elif first is not None:
        print(f"  time to first batch: not available: {first['error']}")
    if ok('loader') and ok('dataloader'):
        a, b = results['loader'], results['dataloader']
        print(f"  peak memory (tree PSS): loader {mib(a['tree_pss'])}, DataLoader {mib(b['tree_pss'])}; "
              f"tree RSS {mib(a['tree_rss'])} vs {mib(b['tree_rss'])}; "
              f"the .beton file is {os.path.getsize(beton) / 2**20:.0f} MiB")


if __name__ == '__main__':
    main()
