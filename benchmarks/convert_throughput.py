"""Conversion throughput of an image folder, against the single-thread encode rate x cores.

    python benchmarks/convert_throughput.py [--images 1000] [--max-resolution 256] [--quality 90]

The folder is ImageNet-like (``benchmarks/imagenet_like.py``: JPEGs of ImageNet's sizes
cut from real photos), made once and reused from ``--root``. Printed, all measured in
this run. The machine may be shared and its load may change, so the two are measured
alternately, ``--repeat`` rounds, and the median of the per-round ratios is reported:

  - the single-thread encode rate: for each file, read it, decode, resize to
    ``--max-resolution`` and encode as JPEG at ``--quality`` (exactly what the converter
    does per image, via ``SourceImageField.prepare``), in a plain loop on one thread with
    OpenCV's own threads off;
  - ``ffcv_convert.convert`` of the whole folder with N workers (listing, reading,
    encoding, writing the parts and merging them into the final file, all included),
    and its ratio to N x the single-thread rate. The target is at least 0.8;
  - for reference, N processes doing the single-thread work on a share of the
    files each: what the machine gives to N-way parallel work at this moment (on a
    shared machine other jobs take cores, and every parallel rate drops with it).
"""
import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_SHARED = None


def _init_process(paths, image_options, workers):
    global _SHARED
    import cv2
    from ffcv_convert import SourceImageField
    cv2.setNumThreads(1)
    _SHARED = (paths, SourceImageField(**image_options), workers)


def _share(k):
    """Process ``k`` of N: the single-thread work on every N-th file."""
    from ffcv_convert import EncodedImage
    paths, field, workers = _SHARED
    for index in range(k, len(paths), workers):
        with open(paths[index], 'rb') as f:
            field.prepare(EncodedImage(f.read(), paths[index]), index)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=1000)
    parser.add_argument('--max-resolution', type=int, default=256)
    parser.add_argument('--quality', type=int, default=90)
    parser.add_argument('--workers', type=int, default=None, help='default: all cores')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--root', default=None,
                        help='folder for the images (default: a folder under the system temp dir, reused)')
    args = parser.parse_args()

    sys.path.insert(0, HERE)
    import cv2
    from ffcv_convert import EncodedImage, SourceImageField, convert
    from imagenet_like import describe, make_image_folder

    cores = len(os.sched_getaffinity(0))
    workers = args.workers or cores
    root = args.root or os.path.join(tempfile.gettempdir(), f'ffcv-bench-imagenet-like-{args.images}')
    t0 = time.perf_counter()
    paths = make_image_folder(root, args.images)
    print(f"{describe(root)} [ready in {time.perf_counter() - t0:.1f} s]")
    print(f"{cores} cores; storing JPEG quality {args.quality}, at most {args.max_resolution} px")

    image_options = {'write_mode': 'jpg', 'max_resolution': args.max_resolution, 'jpeg_quality': args.quality}
    field = SourceImageField(**image_options)

    def single_thread():
        for index, path in enumerate(paths):
            with open(path, 'rb') as f:
                field.prepare(EncodedImage(f.read(), path), index)

    def conversion(tmp):
        dst = os.path.join(tmp, 'out.beton')
        result = convert(root, dst, image_options=image_options, workers=workers, overwrite=True,
                         progress=False)
        assert result.num_samples == len(paths)

    def processes(pool):
        pool.map(_share, range(workers), chunksize=1)

    def rate(fn, *a):
        start = time.perf_counter()
        fn(*a)
        return len(paths) / (time.perf_counter() - start)

    threads = cv2.getNumThreads()
    single_thread()  # warm the page cache and OpenCV
    with tempfile.TemporaryDirectory(dir=os.path.dirname(root)) as tmp:
        conversion(tmp)  # and the converter's imports
    singles, conversions, ratios, pooled = [], [], [], []
    with tempfile.TemporaryDirectory(dir=os.path.dirname(root)) as tmp, \
            multiprocessing.get_context('spawn').Pool(workers, _init_process,
                                                      (paths, image_options, workers)) as pool:
        for round_ in range(args.repeat):
            cv2.setNumThreads(1)
            singles.append(rate(single_thread))
            cv2.setNumThreads(threads)
            conversions.append(rate(conversion, tmp))
            ratios.append(conversions[-1] / (workers * singles[-1]))
            pooled.append(rate(processes, pool) / (workers * singles[-1]))
            print(f"  round {round_ + 1}: single thread {singles[-1]:7.1f} images/s, convert "
                  f"{conversions[-1]:7.1f} images/s, ratio {ratios[-1]:.2f} "
                  f"({workers} processes: {pooled[-1]:.2f})")
    single, converted, ratio = (statistics.median(x) for x in (singles, conversions, ratios))
    print(f"single-thread read+decode+resize+encode: {single:8.1f} images/s "
          f"(x {workers} workers = {single * workers:.1f})")
    print(f"ffcv_convert.convert, {workers} workers:   {converted:8.1f} images/s; median ratio {ratio:.2f} x "
          f"({workers} x single-thread rate) [target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'}]")
    print(f"for reference, {workers} processes doing the same work as the single thread: median "
          f"{statistics.median(pooled):.2f} x ({workers} x single-thread rate)")


if __name__ == '__main__':
    main()
