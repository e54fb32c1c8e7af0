"""The benchmark suite: this loader against its peers on every workload; results as JSON.

    python benchmarks/suite.py [--rounds 5] [--only jpeg256,cifar,...] [--out FILE.json]
    python benchmarks/report.py FILE.json        # -> docs/benchmarks.md and its plots

or both at once: ``hatch run bench:all``. About 15 minutes on 2 cores (more the first time,
to generate and convert the datasets, which are cached in ``--cache-dir``).

Every workload runs its contenders each in its own fresh process (peers in their own
virtual environments), warms each up with one epoch, then times them in ``--rounds``
interleaved rounds (see ``harness.py``): figures are medians of rounds and every ratio is
between contenders of the same run. A peer that cannot be set up here is recorded with the
reason, never dropped. Nothing here asserts a time. The ``gil`` workload is no race: it
samples our loader (and the ``--baseline`` tree) with ``py-spy record --gil`` for the GIL
its threads hold per image (``harness.gil_profiles``; see ``benchmarks/README.md``).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from harness import Contender, all_cores, cpu_model, gil_profiles, run_once, run_rounds  # noqa: E402
from contenders.ceiling import sample_sizes, stored_jpegs  # noqa: E402

WORKLOADS = ('jpeg256', 'jpeg512', 'center512', 'progressive', 'cifar', 'arrays', 'convert', 'start', 'gil')
GIL_TARGET_US = 3.0  # the goal: the loader's threads hold the GIL at most this long per JPEG image
CIFAR_IMAGES = 50_000
ARRAYS = {  # name: (kind, samples, per-sample shape or byte range, batch size)
    'ndarray_3KiB': ('ndarray', 100_000, (768,), 1024),
    'ndarray_300KiB': ('ndarray', 1_000, (76_800,), 64),
    'bytes_300KiB': ('bytes', 1_000, (200 * 1024, 400 * 1024), 64),
}


def log(message):
    print(message, flush=True)


# --------------------------------------------------------------------------- the peers

class Peer:
    """An interpreter that runs contenders, or why there is none."""

    def __init__(self, name, python, probe, setup_hint):
        self.name, self.python = name, python
        self.unavailable, self.versions = None, {}
        if not python or not os.path.exists(python):
            self.unavailable = f"not set up on this machine ({python} not found; {setup_hint})"
            return
        result = subprocess.run([python, '-c', probe], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ['?'])[-1]
            self.unavailable = f"does not run here: {tail}"
        else:
            self.versions = json.loads(result.stdout.strip().splitlines()[-1])


VERSION_PROBE = """
import json, platform, importlib, importlib.metadata as m
found = {'python': platform.python_version()}
for dist in %r:
    try:
        found[dist] = m.version(dist)
    except Exception:
        pass
for module in %r:
    importlib.import_module(module)
print(json.dumps(found))
"""


def find_peers(baseline_python=None):
    ours_dists = ['ffcv-format', 'ffcv-ops', 'ffcv-loader', 'ffcv-convert', 'ffcv', 'numpy', 'numba',
                  'opencv-python-headless', 'opencv-python', 'simplejpeg', 'torch', 'pillow']
    ffcv102_python = os.environ.get('FFCV102_PYTHON',
                                    os.path.join(os.environ.get('FFCV102_VENV', '/opt/ffcv102-venv'), 'bin/python'))
    dali_python = os.environ.get('DALI_PYTHON',
                                 os.path.join(os.environ.get('DALI_VENV', '/opt/dali-venv'), 'bin/python'))
    peers = {
        'ours': Peer('ours', sys.executable, VERSION_PROBE % (ours_dists, ['ffcv.loader', 'ffcv_loader', 'PIL']),
                     'hatch env bench'),
        'ffcv102': Peer('ffcv102', ffcv102_python,
                        VERSION_PROBE % (['ffcv', 'numpy', 'numba', 'opencv-python-headless', 'torch'],
                                         ['ffcv.loader']),
                        'run tests/peers/ffcv102/setup.sh (root: apt libturbojpeg0-dev libopencv-dev)'),
        'dali': Peer('dali', dali_python,
                     VERSION_PROBE % (['nvidia-dali-cuda120', 'nvidia-dali-cuda110', 'nvidia-dali-cuda130',
                                       'numpy'], ['nvidia.dali']),
                     'run benchmarks/peers/dali/setup.sh'),
    }
    if baseline_python:
        # this project as it was (another checkout installed in its own venv): a change to the
        # hot path is measured against it in the same run
        peers['baseline'] = Peer('baseline', baseline_python,
                                 VERSION_PROBE % (ours_dists, ['ffcv.loader', 'ffcv_loader']),
                                 'install the baseline checkout in a venv and give its python')
    return peers


# --------------------------------------------------------------------------- the datasets

def write_beton(path, fields, dataset, workers=None):
    """Write ``dataset`` with our writer into ``path`` atomically (a crash leaves no half file)."""
    from ffcv_format import DatasetWriter
    tmp = path + '.tmp'
    DatasetWriter(tmp, fields, num_workers=workers or -1, progress=False, overwrite=True).from_indexed_dataset(dataset)
    os.replace(tmp, path)


def stamp_ok(path, stamp):
    try:
        with open(path + '.json') as f:
            return os.path.exists(path) and json.load(f) == stamp
    except (OSError, ValueError):
        return False


def save_stamp(path, stamp):
    with open(path + '.json', 'w') as f:
        json.dump(stamp, f)


def jpeg_beton(cache, root, paths, max_resolution, quality=90):
    """The ImageNet-like folder as a .beton: JPEG at most ``max_resolution`` px, ``quality``."""
    import cv2
    from ffcv_format import IntField, RGBImageField
    from imagenet_like import class_index
    with open(os.path.join(root, '.imagenet_like.json'), 'rb') as f:
        stamp = {'folder': __import__('hashlib').sha256(f.read()).hexdigest()}
    beton = os.path.join(cache, f"{os.path.basename(root)}_max{max_resolution}_q{quality}.beton")
    if not stamp_ok(beton, stamp):
        log(f"  converting {root} -> {beton}")

        class Files:
            def __len__(self):
                return len(paths)

            def __getitem__(self, index):
                return cv2.imread(paths[index], cv2.IMREAD_COLOR_RGB), class_index(paths[index])

        write_beton(beton, {'image': RGBImageField(write_mode='jpg', max_resolution=max_resolution,
                                                   jpeg_quality=quality), 'label': IntField()}, Files())
        save_stamp(beton, stamp)
    return beton


def stored_jpegs_dir(beton):
    """The JPEG bytes stored in ``beton``, one file each (for peers that cannot read a .beton)."""
    from ffcv_format import Reader
    folder = beton + '.jpegs'
    with Reader(beton) as reader:
        if os.path.isdir(folder) and len(os.listdir(folder)) == reader.num_samples:
            return folder
    reader, jpegs = stored_jpegs(beton)
    with reader:
        tmp = folder + '.tmp'
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        for i, jpeg in enumerate(jpegs):
            with open(os.path.join(tmp, f'{i:07d}.jpg'), 'wb') as f:
                f.write(jpeg)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def cifar_like(cache, paths, n=CIFAR_IMAGES, seed=0):
    """``n`` 32x32 RGB images cut from the ImageNet-like photos (random crops, area-resized),
    10 classes; as an .npz (for the DataLoader) and a raw .beton."""
    import cv2
    from ffcv_format import IntField, RGBImageField
    base = os.path.join(cache, f'cifar_like_n{n}_s{seed}')
    stamp = {'n': n, 'seed': seed, 'sources': len(paths)}
    if not (stamp_ok(base + '.beton', stamp) and os.path.exists(base + '.npz')):
        log(f"  making {n} CIFAR-like 32x32 images -> {base}.beton")
        rng = np.random.default_rng(seed)
        images = np.empty((n, 32, 32, 3), np.uint8)
        per_source = -(-n // len(paths))
        k = 0
        for path in paths:
            source = cv2.imread(path, cv2.IMREAD_COLOR_RGB)
            h, w = source.shape[:2]
            for _ in range(min(per_source, n - k)):
                side = int(rng.integers(min(h, w) // 4, min(h, w) + 1))
                y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                cv2.resize(source[y:y + side, x:x + side], (32, 32), dst=images[k], interpolation=cv2.INTER_AREA)
                k += 1
        labels = rng.integers(0, 10, n)
        np.savez(base + '.npz', images=images, labels=labels)

        class Arrays:
            def __len__(self):
                return n

            def __getitem__(self, i):
                return images[i], int(labels[i])

        write_beton(base + '.beton', {'image': RGBImageField(write_mode='raw'), 'label': IntField()}, Arrays())
        save_stamp(base + '.beton', stamp)
    return base + '.beton', base + '.npz'


def array_beton(cache, name, seed=0):
    """One field ``data``: float32 arrays of a fixed shape, or bytes of random lengths."""
    from ffcv_format import BytesField, NDArrayField
    kind, n, shape, _batch = ARRAYS[name]
    beton = os.path.join(cache, f'{name}_n{n}.beton')
    stamp = {'kind': kind, 'n': n, 'shape': list(shape), 'seed': seed}
    if not stamp_ok(beton, stamp):
        log(f"  writing {beton}")
        rng = np.random.default_rng(seed)
        if kind == 'ndarray':
            field = NDArrayField(np.dtype('float32'), shape)
            block = rng.standard_normal((64, *shape), dtype=np.float32)

            def sample(i):
                return block[i % 64] + np.float32(i)
        else:
            field = BytesField()
            sizes = rng.integers(shape[0], shape[1] + 1, n)
            noise = rng.integers(0, 256, shape[1] + 64, dtype=np.uint8)

            def sample(i):
                return noise[i % 64:i % 64 + sizes[i]]

        class Samples:
            def __len__(self):
                return n

            def __getitem__(self, i):
                return (sample(i),)

        write_beton(beton, {'data': field}, Samples())
        save_stamp(beton, stamp)
    return beton


def beton_facts(beton, field):
    from ffcv_format import Reader
    with Reader(beton) as reader:
        meta = reader.metadata[field]
        facts = {'file_bytes': os.path.getsize(beton), 'samples': int(reader.num_samples),
                 'mean_sample_bytes': float(sample_sizes(reader, field).mean())}
        if 'height' in (meta.dtype.names or ()):
            facts['median_size'] = [int(np.median(meta['width'])), int(np.median(meta['height']))]
    return facts


# --------------------------------------------------------------------------- the GIL rows

def pyspy_version(pyspy):
    try:
        return subprocess.run([pyspy, '--version'], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, TypeError, subprocess.SubprocessError) as e:
        return f"not usable: {e}"


def gil_workload(args, peers, workloads, save, data, paths, beton256, beton512, N):
    """The ``gil`` rows: GIL held by the loader's threads per image, and the main thread's share
    of the GIL, sampled with ``py-spy record --gil`` (``harness.gil_profiles``); ours and the
    ``--baseline`` tree, on the JPEG 256 (N and 1 threads), JPEG 512 and CIFAR-like workloads."""
    mode = 'blocking' if args.gil_blocking else 'nonblocking'
    log(f"\n== gil: py-spy record --gil --rate {args.gil_rate} ({mode}); {args.gil_windows} rounds of an unsampled "
        f"and a sampled window of {args.gil_seconds:g} s per contender")
    t0 = time.perf_counter()
    cifar_beton, _npz = cifar_like(args.cache_dir, paths)
    data.setdefault('cifar', beton_facts(cifar_beton, 'image'))
    jpeg = dict(batch_size=256, output_size=224, seed=0, order='RANDOM')
    rows = []  # (workload, spec, threads, target)
    for threads in sorted({N, 1}, reverse=True):
        rows.append(('jpeg256', dict(jpeg, beton=beton256, workers=threads), threads, 'ffcv_api:JpegRRC'))
    rows.append(('jpeg512', dict(jpeg, beton=beton512, workers=N), N, 'ffcv_api:JpegRRC'))
    rows.append(('cifar', dict(beton=cifar_beton, batch_size=512, workers=N, seed=0, order='RANDOM'), N,
                 'ffcv_api:CifarRaw'))
    results = {}
    params = {'sampling_rate': args.gil_rate, 'window_s': args.gil_seconds, 'sampled_windows': args.gil_windows,
              'mode': mode, 'target_us': GIL_TARGET_US,
              'py_spy': args.py_spy, 'py_spy_version': pyspy_version(args.py_spy) if args.py_spy else 'not found'}
    workloads['gil'] = {'params': params, 'results': results}
    for workload, spec, threads, target in rows:
        # ours and the baseline on the same workload measured together, their windows interleaved
        suffix = f"{threads} thread{'s' * (threads > 1)}"
        log(f"  -- {workload}, {suffix}")
        group = []
        for peer, label in (('ours', 'ours'), ('baseline', 'ours, baseline')):
            if peer not in peers:
                continue
            name = f"{workload}, {label}, {suffix}"
            results[name] = {'workload': workload, 'contender': label, 'threads': threads,
                             'target_us': GIL_TARGET_US if workload.startswith('jpeg') else None}
            if peers[peer].unavailable:
                results[name]['error'] = f"{peer} {peers[peer].unavailable}"
            else:
                group.append((name, peers[peer].python, target, spec))
        measured = gil_profiles(group, seconds=args.gil_seconds, sampled_windows=args.gil_windows,
                                rate=args.gil_rate, timeout=args.timeout, pyspy=args.py_spy,
                                nonblocking=not args.gil_blocking, log=log)
        for name, r in measured.items():
            results[name].update(r)
            if 'error' in r:
                log(f"  {name}: n/a: {r['error']}")
            else:
                lo, hi = r['gil_us_per_image_95']
                log(f"  {name}: loader threads {r['gil_us_per_image']:.1f} us of GIL per image (95% {lo:.1f}-{hi:.1f}, "
                    f"{r['loader_samples']} samples), main thread {r['main_gil_share']:.1%} of the time; "
                    f"{r['rate_unsampled']:,.0f} images/s unsampled, {r['rate_sampled']:,.0f} sampled; "
                    f"others used {r['others_cores']:.2f} cores")
        workloads['gil']['seconds'] = time.perf_counter() - t0
        save()


# --------------------------------------------------------------------------- the workloads

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=5, help='timed rounds per workload (default 5)')
    parser.add_argument('--only', default=','.join(WORKLOADS),
                        help=f"comma-separated workloads (default all: {','.join(WORKLOADS)})")
    parser.add_argument('--workers', type=int, default=all_cores(),
                        help='threads / worker processes of every contender (default: all cores)')
    parser.add_argument('--images', type=int, default=3000, help='ImageNet-like images (default 3000)')
    parser.add_argument('--cache-dir', default=os.environ.get('FFCV_BENCH_CACHE',
                                                              os.path.expanduser('~/.cache/ffcv-benchmarks')))
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'latest.json'))
    parser.add_argument('--timeout', type=int, default=900)
    parser.add_argument('--gil-seconds', type=float, default=5.0,
                        help='gil: seconds per window (default 5)')
    parser.add_argument('--gil-windows', type=int, default=2,
                        help='gil: rounds, each an unsampled and a sampled window per contender (default 2)')
    parser.add_argument('--gil-rate', type=int, default=200, help='gil: py-spy samples per second (default 200)')
    parser.add_argument('--gil-blocking', action='store_true',
                        help="gil: py-spy's default mode, which stops the process at each sample (default: "
                             "--nonblocking; see harness.gil_profiles for why)")
    parser.add_argument('--py-spy', default=shutil.which('py-spy'), help='gil: the py-spy executable (default: PATH)')
    parser.add_argument('--baseline', metavar='PYTHON',
                        help="also run this project's loader contenders under PYTHON, a venv holding another "
                             "checkout of it (e.g. before a change), as 'ours, baseline'")
    args = parser.parse_args()
    wanted = [w.strip() for w in args.only.split(',') if w.strip()]
    unknown = set(wanted) - set(WORKLOADS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")

    started = time.perf_counter()
    N = args.workers
    os.makedirs(args.cache_dir, exist_ok=True)
    log(f"suite: {N} workers, {args.rounds} rounds; peers:")
    peers = find_peers(args.baseline)
    for peer in peers.values():
        log(f"  {peer.name}: {peer.unavailable or peer.versions}")
    if peers['ours'].unavailable:
        sys.exit(f"this project's packages do not import here: {peers['ours'].unavailable}")

    from imagenet_like import describe, make_image_folder
    root = os.path.join(args.cache_dir, f"imagenet_like_n{args.images}_c10_s0")
    paths = make_image_folder(root, args.images, 10, 0)
    data = {'imagenet_like': {'root': root, 'images': len(paths), 'describe': describe(root)}}
    tmp = tempfile.mkdtemp(prefix='ffcv-bench-')

    def contender(name, peer, target, spec, **kw):
        p = peers[peer]
        return Contender(name, p.python, target, spec, unavailable=p.unavailable and f"{p.name} {p.unavailable}",
                         **kw)

    def image_contenders(beton, size, with_dataloader=False, with_one_thread=False):
        spec = dict(beton=beton, batch_size=256, workers=N, output_size=size, seed=0, order='RANDOM')
        found = [contender('ours', 'ours', 'ffcv_api:JpegRRC', spec)]
        if 'baseline' in peers:
            found.append(contender('ours, baseline', 'baseline', 'ffcv_api:JpegRRC', spec))
        if with_one_thread:
            found += [contender(f'ours, {w} thread{"s" * (w > 1)}', 'ours', 'ffcv_api:JpegRRC',
                                dict(spec, workers=w)) for w in range(1, N)]
        found.append(contender('FFCV 1.0.2', 'ffcv102', 'ffcv_api:JpegRRC', spec))
        if with_dataloader:
            found.append(contender('DataLoader + PIL', 'ours', 'dataloader:JpegPIL',
                                   dict(spec, root=root, images=args.images, classes=10)))
        dali_spec = dict(spec, images=len(paths))
        if not peers['dali'].unavailable:
            dali_spec['jpegs_dir'] = stored_jpegs_dir(beton)
        found.append(contender('DALI (CPU)', 'dali', 'dali:JpegRRC', dali_spec))
        found.append(contender('decode ceiling', 'ours', 'ceiling:JpegDecode', spec, extra=['parallel']))
        return found

    workloads = {}

    def run(name, params, contenders):
        log(f"\n== {name}")
        t0 = time.perf_counter()
        results = run_rounds(contenders, args.rounds, args.timeout, log=log)
        workloads[name] = {'params': params, 'results': results, 'seconds': time.perf_counter() - t0}
        for cname, r in results.items():
            if not cname.startswith('_'):
                log(f"  {cname:28} " + (f"{r['rate']:12,.0f} /s" if 'rate' in r else f"n/a: {r.get('error')}"))
        save()

    def save():
        out = {'meta': meta, 'data': data, 'workloads': workloads}
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out + '.tmp', 'w') as f:
            json.dump(out, f, indent=1)
        os.replace(args.out + '.tmp', args.out)

    meta = {'date': f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
            'cores': all_cores(), 'cpu': cpu_model(), 'memory_gib': os.sysconf('SC_PHYS_PAGES') *
            os.sysconf('SC_PAGE_SIZE') / 2**30, 'system': f"{platform.system()} {platform.release()}",
            'workers': N, 'rounds': args.rounds, 'command': ' '.join(['python', *sys.argv]),
            'peers': {name: {'versions': p.versions, 'unavailable': p.unavailable} for name, p in peers.items()}}

    try:
        needs256 = {'jpeg256', 'progressive', 'start', 'gil'} & set(wanted)
        beton256 = jpeg_beton(args.cache_dir, root, paths, 256) if needs256 else None
        if beton256:
            data['jpeg256'] = beton_facts(beton256, 'image')
        if 'jpeg256' in wanted:
            run('jpeg256', {'max_resolution': 256, 'output_size': 224, 'batch_size': 256},
                image_contenders(beton256, 224, with_dataloader=True, with_one_thread=True))
        if {'jpeg512', 'center512', 'gil'} & set(wanted):
            beton512 = jpeg_beton(args.cache_dir, root, paths, 512)
            data['jpeg512'] = beton_facts(beton512, 'image')
        if 'jpeg512' in wanted:
            run('jpeg512', {'max_resolution': 512, 'output_size': 224, 'batch_size': 256},
                image_contenders(beton512, 224))
        if 'center512' in wanted:
            # validation: centre crop, no flip, files in order; on the JPEG 512 workload's file
            spec = dict(beton=beton512, batch_size=256, workers=N, output_size=224, ratio=224 / 256, seed=0,
                        order='SEQUENTIAL')
            run('center512', {'max_resolution': 512, 'output_size': 224, 'ratio': 224 / 256, 'batch_size': 256,
                              'order': 'SEQUENTIAL'},
                [contender('ours', 'ours', 'ffcv_api:JpegCenterCrop', spec)]
                + ([contender('ours, baseline', 'baseline', 'ffcv_api:JpegCenterCrop', spec)]
                   if 'baseline' in peers else [])
                + [contender('FFCV 1.0.2', 'ffcv102', 'ffcv_api:JpegCenterCrop', spec)])
        if 'progressive' in wanted:
            for size in (160, 192):
                run(f'progressive{size}', {'max_resolution': 256, 'output_size': size, 'batch_size': 256},
                    [c for c in image_contenders(beton256, size) if c.name != 'DALI (CPU)'])
        if 'cifar' in wanted:
            beton, npz = cifar_like(args.cache_dir, paths)
            data['cifar'] = beton_facts(beton, 'image')
            spec = dict(beton=beton, npz=npz, batch_size=512, workers=N, seed=0, order='RANDOM')
            run('cifar', {'images': CIFAR_IMAGES, 'batch_size': 512},
                [contender('ours', 'ours', 'ffcv_api:CifarRaw', spec)]
                + ([contender('ours, baseline', 'baseline', 'ffcv_api:CifarRaw', spec)] if 'baseline' in peers else [])
                + [contender('FFCV 1.0.2', 'ffcv102', 'ffcv_api:CifarRaw', spec),
                 contender('DataLoader + PIL', 'ours', 'dataloader:CifarPIL', spec)])
        if 'arrays' in wanted:
            for name, (kind, _n, _shape, batch_size) in ARRAYS.items():
                beton = array_beton(args.cache_dir, name)
                data[name] = beton_facts(beton, 'data')
                for order in ('SEQUENTIAL', 'RANDOM'):
                    spec = dict(beton=beton, kind=kind, batch_size=batch_size, workers=N, seed=0, order=order)
                    run(f'{name}_{order.lower()}', {'field': name, 'order': order, 'batch_size': spec['batch_size']},
                        [contender('ours', 'ours', 'ffcv_api:Arrays', spec),
                         contender('ours, os_cache=False', 'ours', 'ffcv_api:Arrays', dict(spec, os_cache=False))]
                        + ([contender('ours, baseline', 'baseline', 'ffcv_api:Arrays', spec),
                            contender('ours, baseline, os_cache=False', 'baseline', 'ffcv_api:Arrays',
                                      dict(spec, os_cache=False))] if 'baseline' in peers else [])
                        + [contender('FFCV 1.0.2', 'ffcv102', 'ffcv_api:Arrays', spec),
                         contender('memory copy', 'ours', 'ceiling:MemCopy', spec),
                         contender('copy from page cache', 'ours', 'ceiling:MemCopy',
                                   dict(spec, source='page cache'))])
        if 'convert' in wanted:
            spec = dict(paths=paths, images=min(1000, len(paths)), max_resolution=256, quality=90, workers=N,
                        tmp=tmp)
            run('convert', {'images': spec['images'], 'max_resolution': 256, 'quality': 90},
                [contender('ours', 'ours', 'ffcv_api:Writer', spec)]
                + ([contender('ours, baseline', 'baseline', 'ffcv_api:Writer', spec)] if 'baseline' in peers else [])
                + [contender('FFCV 1.0.2', 'ffcv102', 'ffcv_api:Writer', spec),
                 contender('encode ceiling', 'ours', 'ceiling:Encode', spec)])
        if 'start' in wanted:
            log("\n== start: Loader(...) to the first batch, fresh processes, cold and warm numba cache")
            start = {}
            spec = dict(beton=beton256, batch_size=256, workers=N, output_size=224, seed=0, order='RANDOM')
            for peer in ('ours', 'ffcv102'):
                p = peers[peer]
                if p.unavailable:
                    start[peer] = {'error': p.unavailable}
                    continue
                cache_dir = tempfile.mkdtemp(prefix='numba-cache-', dir=tmp)
                env = {'NUMBA_CACHE_DIR': cache_dir}
                start[peer] = {kind: run_once(p.python, 'ffcv_api:JpegRRC', spec, args.timeout, env)
                               for kind in ('cold', 'warm')}
                for kind, r in start[peer].items():
                    log(f"  {peer} {kind}: " + (f"first batch {r['first_batch_s']:.2f} s after {r['import_s']:.2f} s "
                                               f"of imports" if 'first_batch_s' in r else f"n/a: {r.get('error')}"))
            workloads['start'] = {'params': spec, 'results': start}
            save()
        if 'gil' in wanted:
            gil_workload(args, peers, workloads, save, data, paths, beton256, beton512, N)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta['seconds'] = time.perf_counter() - started
    save()
    log(f"\nresults: {args.out} ({meta['seconds'] / 60:.1f} min); report: python benchmarks/report.py {args.out}")


if __name__ == '__main__':
    main()
