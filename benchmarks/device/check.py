"""The device check: what a machine with an NVIDIA GPU and many cores does with the loader.

    python benchmarks/device/check.py [--out DIR] [--quick]
    bash benchmarks/device/run.sh [PYTHON]          # the same, from the repository's root

In one run (under 8 minutes on a GPU machine with 16 cores), it writes ``DIR/device.json``
(every figure) and ``DIR/device.md`` (the tables for ``docs/benchmarks.md``):

1. **GPU tests**: the tests marked ``gpu`` in every package (``pytest -m gpu``): passed,
   failed, skipped.
2. **CUDA prefetch**: JPEG images (max 256 px, random resized crop 224 + flip) loaded with
   ``ToDevice('cuda', non_blocking=True)`` while the GPU runs a fixed amount of work per batch
   (matrix products timed beforehand to take about as long as the loader needs per batch);
   the overlap is ``(loader alone + GPU work alone) / both together``: 2.0 when loading hides
   completely behind the GPU's work, 1.0 when nothing overlaps. Also: the batches are on the
   GPU when handed out (``device``), and the loader's rate with and without the copy.
3. **Scaling**: the same JPEG workload on the CPU with 1, 2, 4, 8, 16 threads (up to the
   cores), images/s and the speed-up over one thread.
4. **CIFAR recipe**: ``integrations/cifar``'s training (ResNet-9, its config) on generated 32x32
   data (50,000 images, 10,000 for validation), two epochs on the GPU at full speed; the second
   epoch's time (training and validation) and images/s.

Parts that need CUDA are reported as "not run: ..." without it, so the script can be tried
on any machine (``--quick``: fewer images and threads, for a smoke test).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ data


def write_jpeg_file(path: str, images: int, seed: int = 0) -> str:
    """``images`` photo-like JPEGs (sides 160..400 px, stored at max 256 px, quality 90) and labels."""
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter
    from ffcv_format.testing import photo_like_image

    rng = np.random.default_rng(seed)
    shapes = [(int(rng.integers(160, 400)), int(rng.integers(160, 400))) for _ in range(images)]

    class Photos:
        def __len__(self):
            return images

        def __getitem__(self, i):
            h, w = shapes[i]
            return photo_like_image(np.random.default_rng(seed * 1_000_003 + i), h, w), i % 1000

    DatasetWriter(path, {'image': RGBImageField(write_mode='jpg', max_resolution=256, jpeg_quality=90),
                         'label': IntField()}).from_indexed_dataset(Photos())
    return path


def jpeg_loader(path: str, threads: int, device: str | None, batch_size: int = 256):
    """The JPEG workload: RRC 224 + flip, uint8 NCHW, on ``device`` when given."""
    from ffcv.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import RandomHorizontalFlip, ToDevice, ToTensor, ToTorchImage

    to_device = [ToDevice(device, non_blocking=True)] if device else []
    return Loader(path, batch_size=batch_size, num_workers=threads, order=OrderOption.RANDOM, seed=0,
                  pipelines={'image': [RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip(),
                                       ToTensor(), ToTorchImage(), *to_device],
                             'label': [IntDecoder(), ToTensor(), *to_device]})


def epoch_rate(loader, epochs: int = 2, on_batch=None) -> float:
    """Images/s over ``epochs`` epochs after a warm-up epoch (``on_batch(images)`` per batch)."""
    import torch

    for _ in loader:
        pass
    count, started = 0, time.perf_counter()
    for _ in range(epochs):
        for images, labels in loader:
            if on_batch is not None:
                on_batch(images)
            count += len(labels)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return count / (time.perf_counter() - started)


# ------------------------------------------------------------------ parts


def gpu_tests(python: str) -> dict:
    """``pytest -m gpu`` over every package's tests: counts from pytest's summary line."""
    folders = [str(p) for p in [*sorted((REPOSITORY / 'packages').glob('*/tests')), REPOSITORY / 'tests',
                                *sorted((REPOSITORY / 'integrations').glob('*/tests'))]]
    done = subprocess.run([python, '-m', 'pytest', '-q', '-m', 'gpu', '-p', 'no:randomly',
                           '--import-mode=importlib',
                           *folders], cwd=REPOSITORY, capture_output=True, text=True)
    summary = (done.stdout.strip().splitlines() or [''])[-1]
    parts = summary.strip('= ').split(' in ')[0].split(', ')
    counts = {word: int(number)
              for number, word in (part.split()[:2] for part in parts if part[:1].isdigit())}
    return {'returncode': done.returncode, 'summary': summary, 'counts': counts}


def cuda_prefetch(path: str, threads: int) -> dict:
    """Overlap of loading (with the copy to the GPU) and the GPU's own work."""
    import torch

    if not torch.cuda.is_available():
        return {'not_run': 'no CUDA device'}
    loader_cpu = jpeg_loader(path, threads, None)
    loader_gpu = jpeg_loader(path, threads, 'cuda')
    rate_cpu = epoch_rate(loader_cpu)
    rate_gpu = epoch_rate(loader_gpu)
    batch_s = loader_gpu.batch_size / rate_gpu
    a = torch.randn(4096, 4096, device='cuda', dtype=torch.float16)

    def gpu_work(repeats):
        for _ in range(repeats):
            a @ a

    gpu_work(3)
    torch.cuda.synchronize()
    started = time.perf_counter()
    gpu_work(20)
    torch.cuda.synchronize()
    repeats = max(1, int(round(batch_s / ((time.perf_counter() - started) / 20))))
    batches = len(loader_gpu)
    started = time.perf_counter()
    for _ in range(batches * 2):
        gpu_work(repeats)
    torch.cuda.synchronize()
    work_s = time.perf_counter() - started
    devices = set()

    def with_work(images):
        devices.add(str(images.device))
        gpu_work(repeats)

    both_rate = epoch_rate(loader_gpu, on_batch=with_work)
    images = 2 * batches * loader_gpu.batch_size
    both_s = images / both_rate
    load_s = images / rate_gpu
    return {'threads': threads, 'loader_cpu_images_s': rate_cpu, 'loader_to_gpu_images_s': rate_gpu,
            'gpu_work_per_batch_s': work_s / (batches * 2), 'loader_alone_s': load_s,
            'gpu_work_alone_s': work_s,
            'both_s': both_s, 'overlap': (load_s + work_s) / both_s, 'batch_devices': sorted(devices),
            'gpu': torch.cuda.get_device_name(0)}


def scaling(path: str, thread_counts: list[int]) -> dict:
    """Images/s of the JPEG workload on the CPU for each thread count, and the speed-up over the first."""
    rates = {}
    for threads in thread_counts:
        rates[threads] = epoch_rate(jpeg_loader(path, threads, None))
    first = rates[thread_counts[0]]
    return {'images_s': rates, 'speedup': {t: r / first for t, r in rates.items()}}


def write_cifar_like(path: str, images: int, seed: int) -> str:
    """``images`` raw 32x32 photo-like images with labels 0..9, as CIFAR-10's files hold."""
    from ffcv.fields import IntField, RGBImageField
    from ffcv_format.testing import photo_like_image, write_dataset

    rng = np.random.default_rng(seed)
    samples = [(photo_like_image(rng, 32, 32), i % 10) for i in range(images)]
    write_dataset(path, {'image': RGBImageField(write_mode='raw'), 'label': IntField()}, samples)
    return path


def cifar_recipe(scratch: Path, quick: bool) -> dict:
    """Two epochs of the CIFAR-10 recipe (``integrations/cifar``, its config unchanged but for the
    data and the epochs) on generated data, on the GPU; the second epoch's time is the figure."""
    import torch

    if not torch.cuda.is_available():
        return {'not_run': 'no CUDA device'}
    sys.path.insert(0, str(REPOSITORY / 'integrations' / 'cifar'))
    import train_cifar

    train_images, test_images = (5_000, 1_000) if quick else (50_000, 10_000)
    config = train_cifar.load_config(overrides={
        'train_dataset': write_cifar_like(str(scratch / 'cifar_train.beton'), train_images, seed=0),
        'val_dataset': write_cifar_like(str(scratch / 'cifar_test.beton'), test_images, seed=1),
        'epochs': 2, 'lr_peak_epoch': 1, 'device': 'cuda'})
    history = train_cifar.train(config)
    seconds = history['seconds'][-1]
    return {'train_images': train_images, 'test_images': test_images, 'epoch_seconds': seconds,
            'images_per_second': (train_images + test_images * (2 if config['flip_tta'] else 1)) / seconds,
            'history': history}


# ------------------------------------------------------------------ report


def markdown(results: dict) -> str:
    """The tables of ``results`` in Markdown."""
    meta = results['meta']
    lines = ['## Device check', '',
             f"- date: {meta['date']}; machine: {meta['cores']} cores, {meta['gpu'] or 'no GPU'}; "
             f"torch {meta['torch']}", f"- command: `{meta['command']}` ({results['wall_s']:.0f} s)", '']
    tests = results['gpu_tests']
    lines += [f"GPU tests (`pytest -m gpu`): {tests['summary'] or 'no output'}", '']
    prefetch = results['cuda_prefetch']
    if 'not_run' in prefetch:
        lines += [f"CUDA prefetch: not run ({prefetch['not_run']})", '']
    else:
        lines += ['| CUDA prefetch (JPEG 256, RRC 224, batch 256) | value |', '|---|---:|',
                  f"| loader, batches on the CPU | {prefetch['loader_cpu_images_s']:,.0f} images/s |",
                  f"| loader, batches copied to the GPU | "
                  f"{prefetch['loader_to_gpu_images_s']:,.0f} images/s |",
                  f"| GPU work per batch | {prefetch['gpu_work_per_batch_s'] * 1e3:.1f} ms |",
                  f"| overlap (2.0: loading hidden behind the GPU's work) | {prefetch['overlap']:.2f} |",
                  f"| batches handed out on | {', '.join(prefetch['batch_devices'])} |", '']
    scale = results['scaling']
    lines += ['| threads | images/s | speed-up |', '|---:|---:|---:|']
    lines += [f"| {t} | {r:,.0f} | {scale['speedup'][t]:.2f}x |" for t, r in scale['images_s'].items()]
    lines.append('')
    cifar = results['cifar_recipe']
    if 'not_run' in cifar:
        lines.append(f"CIFAR-10 recipe: not run ({cifar['not_run']})")
    else:
        lines.append(f"CIFAR-10 recipe (`integrations/cifar`, ResNet-9, batch 512), second epoch on "
                     f"{cifar['train_images']:,} generated images plus validation on "
                     f"{cifar['test_images']:,}: "
                     f"{cifar['epoch_seconds']:.1f} s ({cifar['images_per_second']:,.0f} images/s)")
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=Path('device-check'),
                        help='where the JSON and Markdown go')
    parser.add_argument('--quick', action='store_true', help='fewer images and threads (a smoke test)')
    parser.add_argument('--skip-tests', action='store_true', help='do not run the GPU-marked tests')
    args = parser.parse_args(argv)
    import torch

    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    thread_counts = [t for t in (1, 2, 4, 8, 16) if t <= cores] if not args.quick else [1, min(2, cores)]
    results = {'meta': {'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'cores': cores,
                        'machine': platform.platform(), 'torch': torch.__version__,
                        'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                        'command': ' '.join(['python', 'benchmarks/device/check.py',
                                             *(argv or sys.argv[1:])])}}
    results['gpu_tests'] = ({'summary': 'skipped (--skip-tests)', 'counts': {}} if args.skip_tests
                            else gpu_tests(sys.executable))
    print(f"GPU tests: {results['gpu_tests']['summary']}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        path = write_jpeg_file(os.path.join(scratch, 'jpeg256.beton'), 600 if args.quick else 5000)
        results['cuda_prefetch'] = cuda_prefetch(path, cores)
        print(f"CUDA prefetch: {results['cuda_prefetch']}", flush=True)
        results['scaling'] = scaling(path, thread_counts)
        print(f"scaling: {results['scaling']}", flush=True)
        results['cifar_recipe'] = cifar_recipe(Path(scratch), args.quick)
        cifar = results['cifar_recipe']
        print(f"CIFAR recipe: {cifar.get('not_run') or cifar['epoch_seconds']}", flush=True)
    results['wall_s'] = time.perf_counter() - started
    (args.out / 'device.json').write_text(json.dumps(results, indent=1, default=str))
    (args.out / 'device.md').write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
