"""The loader's throughput from an S3-compatible server on this machine against the same file
on local disk, as a ratio measured in one run.

    python benchmarks/remote.py [--samples 2000] [--rounds 5] [--order quasi_random] [--workers N]

Writes two files (a JPEG workload: 192x256 photo-like images, random resized crops to 160x160;
an array workload: 64x256 float32 arrays), 2 MiB pages, and serves them from moto's S3 server
(``pip install 'moto[server]' s3fs``) run in its own process on 127.0.0.1. Each round times one
epoch of a fresh loader per configuration, the configurations one after the other (their
order rotating), so that load from elsewhere hits them alike:

- ``local``: the file on local disk (``os_cache=True``, the memory map);
- ``s3``: ``s3://...`` without a cache directory (process cache, range requests);
- ``s3+cache cold``: with an empty cache directory (pages downloaded, written, synced);
- ``s3+cache warm``: the cache directory of the cold run (no download; ``os_cache=True``
  reads the memory-mapped copy).

Printed per workload and configuration: samples/s and MiB/s of the file's data (median and
the range over rounds), the time to open the file (``Loader(...)``, median), and the ratio to
``local`` per round (median and range). For scale, the server's own speed: 2 MiB range reads
of the array file by 16 threads through s3fs, without the loader. The server runs on the same
cores as the loader: on a small machine the ratio includes the server's CPU time, not a
network's latency.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

BUCKET = 'bench'
PAGE = 1 << 21


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_server():
    """moto's S3 server in its own process on 127.0.0.1; returns (process, endpoint URL)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, '-m', 'moto.server', '-H', '127.0.0.1', '-p', str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).read()
            return process, endpoint
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto's server did not start")


def write_files(folder, samples):
    from ffcv_format import DatasetWriter, IntField, NDArrayField, RGBImageField
    from ffcv_format.testing import photo_like_image
    rng = np.random.default_rng(0)
    images = [photo_like_image(rng, 192, 256) for _ in range(64)]
    jpeg = os.path.join(folder, 'jpeg.beton')
    DatasetWriter(jpeg, {'image': RGBImageField(write_mode='jpg', jpeg_quality=90), 'label': IntField()},
                  page_size=PAGE, progress=False).from_indexed_dataset(
        [(np.roll(images[k % 64], k, axis=1), k % 1000) for k in range(samples)])
    arrays = os.path.join(folder, 'array.beton')
    DatasetWriter(arrays, {'values': NDArrayField(np.dtype('float32'), (64, 256)), 'label': IntField()},
                  page_size=PAGE, progress=False).from_indexed_dataset(
        [(rng.standard_normal((64, 256)).astype(np.float32), k % 1000) for k in range(samples)])
    return {'jpeg': jpeg, 'array': arrays}


def data_bytes(path):
    """Bytes of the samples' data in the file (its allocations)."""
    from ffcv_format import Reader
    return int(Reader(path).alloc_table['size'].sum())


def pipelines(workload):
    from ffcv_ops.decoders import NDArrayDecoder, RandomResizedCropRGBImageDecoder
    from ffcv_ops.transforms import ToTensor
    if workload == 'jpeg':
        return {'image': [RandomResizedCropRGBImageDecoder((160, 160)), ToTensor()]}
    return {'values': [NDArrayDecoder(), ToTensor()]}


def timed_epoch(fname, workload, args, **kwargs):
    """(seconds to make the loader, samples per second of one epoch)."""
    from ffcv_loader import Loader, OrderOption
    began = time.perf_counter()
    loader = Loader(fname, batch_size=args.batch_size, num_workers=args.workers, seed=1,
                    order=OrderOption[args.order.upper()], pipelines=pipelines(workload),
                    batches_ahead=args.batches_ahead, **kwargs)
    opened = time.perf_counter()
    count = 0
    for batch in loader:
        count += len(batch[0])
    elapsed = time.perf_counter() - opened
    loader.close()
    loader.memory_manager.close()
    return opened - began, count / elapsed


def server_speed(url, options, size, threads=16):
    """MiB/s of 2 MiB range reads of ``url`` by ``threads`` threads through s3fs, the loader aside."""
    from concurrent.futures import ThreadPoolExecutor

    import fsspec
    fs, path = fsspec.core.url_to_fs(url, **options)
    ranges = [(start, min(start + PAGE, size)) for start in range(0, size, PAGE)]
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda r: len(fs.cat_file(path, start=r[0], end=r[1])), ranges))
    return total / 2**20 / (time.perf_counter() - began)


def spread(values, fmt):
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}, {fmt(max(values))}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--samples', type=int, default=2000)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--order', default='quasi_random', choices=['sequential', 'random', 'quasi_random'])
    parser.add_argument('--workers', type=int, default=os.cpu_count())
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--batches-ahead', type=int, default=3)
    parser.add_argument('--dir', default=None, help="where to write the files (default: a temporary folder)")
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID='testing', AWS_SECRET_ACCESS_KEY='testing',
                      AWS_EC2_METADATA_DISABLED='true')
    folder = args.dir or tempfile.mkdtemp(prefix='ffcv-remote-bench-')
    os.makedirs(folder, exist_ok=True)
    files = write_files(folder, args.samples)
    server, endpoint = start_server()
    try:
        from ffcv_format.remote_testing import S3Server
        s3 = S3Server(endpoint)
        urls = {}
        for workload, path in files.items():
            urls[workload] = f"s3://{BUCKET}/{workload}.beton"
            s3.upload(path, urls[workload])
        options = s3.storage_options
        raw = [server_speed(urls['array'], options, os.path.getsize(files['array'])) for _ in range(3)]
        print(f"{args.samples} samples per file, {args.order}, batch {args.batch_size}, "
              f"{args.workers} workers, "
              f"batches_ahead {args.batches_ahead}, {args.rounds} rounds; moto at {endpoint}; "
              f"files: " + ', '.join(f"{w} {os.path.getsize(p) / 2**20:.0f} MiB" for w, p in files.items()))
        print(f"server alone (2 MiB range reads, 16 threads, s3fs): "
              f"{spread(raw, lambda v: f'{v:.0f}')} MiB/s")
        for workload in files:
            cache_root = os.path.join(folder, f'cache-{workload}')

            def configurations(round_number):
                cold = os.path.join(cache_root, f'round-{round_number}')
                return {
                    'local': lambda: timed_epoch(files[workload], workload, args),
                    's3': lambda: timed_epoch(urls[workload], workload, args, storage_options=options),
                    's3+cache cold': lambda: timed_epoch(urls[workload], workload, args,
                                                         storage_options=options, cache_dir=cold),
                    's3+cache warm': lambda: timed_epoch(urls[workload], workload, args,
                                                         storage_options=options, cache_dir=cold, os_cache=True),
                }

            names = list(configurations(-1))
            for name, run in configurations(-1).items():      # warm-up: numba, connections
                run()
            rates = {name: [] for name in names}
            opens = {name: [] for name in names}
            for r in range(args.rounds):
                runs = configurations(r)
                shift = r % 3                      # rotate the order; warm always right after cold
                order = ['local', 's3', 's3+cache']
                order = order[shift:] + order[:shift]
                for name in order:
                    for full in ([name] if name != 's3+cache' else ['s3+cache cold', 's3+cache warm']):
                        seconds, rate = runs[full]()
                        rates[full].append(rate)
                        opens[full].append(seconds)
            per_sample = data_bytes(files[workload]) / args.samples / 2**20
            print(f"\n{workload} ({per_sample * 2**10:.1f} KiB of data per sample):")
            print(f"  {'configuration':<15} {'samples/s: median [min, max]':>30} {'MiB/s':>7} {'open s':>7} "
                  f"{'ratio to local: median [min, max]':>36}")
            for name in names:
                ratios = [a / b for a, b in zip(rates[name], rates['local'])]
                print(f"  {name:<15} {spread(rates[name], lambda v: f'{v:,.0f}'):>30} "
                      f"{statistics.median(rates[name]) * per_sample:>7.0f} "
                      f"{statistics.median(opens[name]):>7.3f} {spread(ratios, lambda v: f'{v:.2f}'):>36}")
            shutil.rmtree(cache_root, ignore_errors=True)
    finally:
        server.terminate()
        server.wait()
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == '__main__':
    main()
