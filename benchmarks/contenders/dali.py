"""NVIDIA DALI, CPU-only mode (``device_id=None``), as a benchmark peer.

Runs in DALI's own virtual environment (``benchmarks/peers/dali/setup.sh``, default
``/opt/dali-venv``), never in the project's environment:

    /opt/dali-venv/bin/python benchmarks/harness.py --child dali:JpegRRC   (the spec on stdin)

Importing this module needs only the standard library; ``nvidia.dali`` is imported
in :meth:`JpegRRC.warmup` (that import is what ``import_s`` times) and numpy there too.

Per image: decode (CPU, nvImageCodec's libjpeg-turbo backend), random resized crop with
scale (0.08, 1) and ratio (3/4, 4/3) to ``output_size`` x ``output_size``, horizontal
flip with p=0.5, uint8 CHW. Batches of ``batch_size`` on ``workers`` DALI threads;
DALI's default prefetching (queue depth 2, pipelined and asynchronous executor); an
epoch's clock starts after the prefetched batches are taken (see :meth:`JpegRRC.epoch`).

Classes:

* ``JpegRRC``: DALI's idiomatic CPU training pipeline -- ``fn.decoders.image_random_crop``
  (draws the crop window and decodes only that region of interest, as in DALI's own
  ResNet-50 example), then ``fn.resize`` to the output size, then
  ``fn.crop_mirror_normalize(dtype=UINT8, output_layout='CHW', mirror=coin)``.
* ``JpegRRCFullDecode``: decodes the whole image (``fn.decoders.image``), then
  ``fn.random_resized_crop``: the same work split as ffcv's decoder (full decode, then
  crop + resize), for an apples-to-apples comparison.

Self-check (warm-up + 3 epochs)::

    /opt/dali-venv/bin/python benchmarks/contenders/dali.py JPEGS_DIR [--workers 2] ...
"""
import glob
import importlib.util
import os
import time

PREFETCH = 2  # DALI's default prefetch_queue_depth
_JPEG_PATTERNS = ('*.jpg', '*.jpeg', '*.JPG', '*.JPEG', '*.Jpg', '*.Jpeg')
_SETUP_HINT = 'run benchmarks/peers/dali/setup.sh and use ${DALI_VENV:-/opt/dali-venv}/bin/python'


def _rss_bytes():
    """VmRSS of this process, in bytes (0 where /proc is missing)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _jpeg_files(folder):
    """Every JPEG under ``folder`` (recursively: flat or class subfolders), sorted."""
    found = set()
    for pattern in _JPEG_PATTERNS:
        found.update(glob.glob(os.path.join(glob.escape(folder), '**', pattern), recursive=True))
    return sorted(found)


class JpegRRC:
    """DALI CPU pipeline: fused ROI decode + random crop, resize, mirror, uint8 CHW."""

    #: 'roi': fn.decoders.image_random_crop + fn.resize;
    #: 'full': fn.decoders.image + fn.random_resized_crop
    decode = 'roi'

    def __init__(self, spec):
        if importlib.util.find_spec('nvidia') is None or importlib.util.find_spec('nvidia.dali') is None:
            raise RuntimeError(f'DALI: nvidia.dali is not installed in this interpreter ({_SETUP_HINT})')
        self.spec = dict(spec)
        self.batch_size = int(spec['batch_size'])
        self.workers = int(spec['workers'])
        self.output_size = int(spec['output_size'])
        self.seed = int(spec['seed'])
        folder = spec['jpegs_dir']
        files = _jpeg_files(folder)
        if not files:
            raise ValueError(f'DALI: no *.jpg files under jpegs_dir {folder!r}')
        images = int(spec.get('images') or len(files))
        if images > len(files):
            raise ValueError(f'DALI: spec asks for {images} images, jpegs_dir {folder!r} has {len(files)}')
        self.files = files[:images]
        self.images = images
        self.batches = images // self.batch_size  # drop_last=True
        if self.batches < 1:
            raise ValueError(f'DALI: {images} images make no full batch of {self.batch_size}')
        self.pipe = None

    # -- pipeline --------------------------------------------------------------------------

    def _build(self):
        from nvidia.dali import fn, pipeline_def, types

        size = [self.output_size, self.output_size]
        area, ratio = [0.08, 1.0], [3.0 / 4.0, 4.0 / 3.0]
        decode = self.decode

        @pipeline_def(batch_size=self.batch_size, num_threads=self.workers, device_id=None,
                      seed=self.seed)
        def rrc_pipeline():
            jpegs, _labels = fn.readers.file(files=self.files, random_shuffle=True, name='reader')
            if decode == 'roi':
                images = fn.decoders.image_random_crop(jpegs, device='cpu', output_type=types.RGB,
                                                       random_area=area, random_aspect_ratio=ratio)
                images = fn.resize(images, size=size)
            else:
                images = fn.decoders.image(jpegs, device='cpu', output_type=types.RGB)
                images = fn.random_resized_crop(images, size=size, random_area=area,
                                                random_aspect_ratio=ratio)
            mirror = fn.random.coin_flip(probability=0.5)
            return fn.crop_mirror_normalize(images, dtype=types.UINT8, output_layout='CHW',
                                            mirror=mirror)

        pipe = rrc_pipeline()
        pipe.build()
        return pipe

    def _next(self):
        """One batch as a (batch, 3, S, S) uint8 numpy array on the CPU (no extra copy:
        the array views DALI's contiguous output buffer)."""
        (out,) = self.pipe.run()
        return self._np.asarray(out.as_tensor())

    # -- protocol --------------------------------------------------------------------------

    def warmup(self):
        t0 = time.perf_counter()
        import numpy as np
        import nvidia.dali  # noqa: F401
        from nvidia.dali import fn, pipeline_def, types  # noqa: F401
        import_s = time.perf_counter() - t0
        rss_after_imports = _rss_bytes()
        self._np = np

        t1 = time.perf_counter()
        try:
            self.pipe = self._build()
            first = self._next()
        except Exception as e:  # noqa: BLE001 -- report why DALI cannot run here
            msg = f'{type(e).__name__}: {e}'.replace('\n', ' ')[:300]
            raise RuntimeError(f'DALI: CPU-only pipeline (device_id=None) failed: {msg}') from e
        first_batch_s = time.perf_counter() - t1
        shape, dtype = list(first.shape), str(first.dtype)
        del first
        for _ in range(self.batches - 1):
            self._next()
        warm_s = time.perf_counter() - t1
        return dict(import_s=import_s, first_batch_s=first_batch_s,
                    warmup_rate=self.batches * self.batch_size / warm_s,
                    images_per_epoch=self.batches * self.batch_size, shape=shape, dtype=dtype,
                    rss_after_imports=rss_after_imports)

    def epoch(self):
        # The reader streams on across epoch boundaries (it wraps around the file list);
        # an epoch is images // batch_size batches, like drop_last=True.
        # DALI keeps PREFETCH batches ready: made while the harness ran other contenders,
        # they would come for free. The clock starts once they are taken, and they are not
        # counted (the pipeline makes the next ones meanwhile, so nothing is left out).
        for _ in range(PREFETCH):
            self._next()
        t0 = time.perf_counter()
        for _ in range(self.batches - PREFETCH):
            self._next()
        dt = time.perf_counter() - t0
        n = (self.batches - PREFETCH) * self.batch_size
        return {'rate': n / dt, 'images': n}

    def close(self):
        self.pipe = None


class JpegRRCFullDecode(JpegRRC):
    """Whole-image decode, then fn.random_resized_crop (ffcv's split of the work)."""

    decode = 'full'


def _main(argv=None):
    import argparse
    import json

    parser = argparse.ArgumentParser(description='DALI CPU-only contender self-check: warm-up + epochs')
    parser.add_argument('jpegs_dir')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--output-size', type=int, default=224)
    parser.add_argument('--images', type=int, default=0, help='default: every JPEG in the folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--full-decode', action='store_true', help='use JpegRRCFullDecode')
    args = parser.parse_args(argv)

    spec = dict(beton=None, jpegs_dir=args.jpegs_dir, batch_size=args.batch_size,
                workers=args.workers, output_size=args.output_size, seed=args.seed,
                images=args.images or len(_jpeg_files(args.jpegs_dir)))
    cls = JpegRRCFullDecode if args.full_decode else JpegRRC
    contender = cls(spec)
    warm = contender.warmup()  # first: it times the import of nvidia.dali
    import nvidia.dali
    print(json.dumps(dict(contender=cls.__name__, dali=nvidia.dali.__version__,
                          spec={k: v for k, v in spec.items() if k != 'beton'})))
    print('warmup', json.dumps(warm))
    rates, per_cpu_s = [], []
    for i in range(args.epochs):
        c0 = time.process_time()  # CPU time of every thread of this process
        result = contender.epoch()
        cpu_s = time.process_time() - c0
        rates.append(result['rate'])
        per_cpu_s.append(result['images'] / cpu_s)
        print(f'epoch {i}', json.dumps(result), f'(CPU {cpu_s:.2f} s: {per_cpu_s[-1]:.0f} images per CPU-s)')
    if rates:
        print(f'rates: {", ".join(f"{r:.0f}" for r in rates)} images/s; best {max(rates):.0f}, '
              f'mean {sum(rates) / len(rates):.0f}; {max(per_cpu_s):.0f} images per CPU-second '
              f'(best; x{min(args.workers, os.cpu_count() or 1)}: the rate uncontended cores could reach)')
    contender.close()


if __name__ == '__main__':
    _main()
