"""``ffcv demo``: convert real images to .beton files, train on them, compare with a DataLoader.

This module only parses and prints; torch and scikit-learn load when the demo runs (so
that ``ffcv --help`` stays fast), and the work is in the sibling modules.
"""
import argparse
import math
import os
import shutil
import tempfile
import time

from ffcv_format.units import human_size, positive_int_argument

#: the digits scikit-learn ships
DIGITS = 1797
#: the share of each digit held out for the test accuracy
TEST_FRACTION = 0.2
#: defaults measured to reach over 98% test accuracy (seeds 0 to 5) in well under a minute on
#: 2 cores
EPOCHS, BATCH_SIZE, LR = 8, 64, 0.1

DEMO_HELP = """\
Train a small network on real images with ffcv, on the CPU, in well under a minute.

scikit-learn's 1,797 handwritten digits (8x8 pixels, 16 grey levels) are scaled up to
--image-size RGB images and split into a training and a test part (1,438 and 359 images),
each written to a .beton file as JPEGs. A small CNN then trains on the training file with
ffcv's Loader (random order, a random shift of up to 1/16 of the image side; no flips:
a mirrored digit is no digit) and is evaluated on the test file. Last, the data loading
alone is timed, epochs of the training file for about a second, with the Loader and with
a PyTorch DataLoader doing the same job (decoding the same JPEG bytes with OpenCV, the
same shift, batch size and number of workers). The last line is the test accuracy:
`test accuracy: 98.3% (353 of 359 test images)`.

Needs scikit-learn: pip install 'ffcv[demo]'. The same --seed gives the same files, the
same batches and the same accuracy on one machine, whatever --workers (torch trains with
one thread).

examples:
  ffcv demo                                          (about 15 s on 2 cores)
  ffcv demo --dir demo                               (keep digits-train.beton and digits-test.beton in demo/)
  ffcv demo --samples 500 --epochs 5 --batch-size 32 (a quick run on part of the digits)
  ffcv demo --image-size 64 --workers 4 --no-compare
"""


def _jpeg_quality(text: str) -> int:
    value = positive_int_argument(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a JPEG quality from 1 to 100, got {text!r}")
    return value


def add_commands(subparsers) -> None:
    """Add ``demo`` to an argparse subparsers object."""
    p = subparsers.add_parser('demo', description=DEMO_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              help="convert real images (scikit-learn's digits), train a small CNN on the "
                                   "CPU and compare with a PyTorch DataLoader")
    p.add_argument('--dir', metavar='DIR',
                   help='where to write digits-train.beton and digits-test.beton, replacing them if there '
                        '(default: a temporary directory, removed at the end unless --keep)')
    p.add_argument('--keep', action='store_true',
                   help='keep the temporary directory and its files (with --dir the files are always kept)')
    p.add_argument('--epochs', type=positive_int_argument, default=EPOCHS, metavar='N',
                   help=f'training epochs (default: {EPOCHS})')
    p.add_argument('--batch-size', type=positive_int_argument, default=BATCH_SIZE, metavar='N',
                   help=f'images per batch, for training and for the comparison (default: {BATCH_SIZE})')
    p.add_argument('--lr', type=float, default=LR, metavar='LR',
                   help=f'peak learning rate of SGD with momentum (default: {LR})')
    p.add_argument('--workers', type=positive_int_argument, metavar='N',
                   help='loader threads, and DataLoader worker processes (default: one per core)')
    p.add_argument('--seed', type=int, default=0, metavar='N',
                   help='seed of the split, the initial weights, the order and the shifts (default: 0)')
    p.add_argument('--image-size', type=positive_int_argument, default=32, metavar='PX',
                   help='side of the stored images in pixels, 8 to 256 (default: 32)')
    p.add_argument('--jpeg-quality', type=_jpeg_quality, default=90, metavar='Q',
                   help='JPEG quality of the stored images, 1 to 100 (default: 90)')
    p.add_argument('--samples', type=positive_int_argument, default=DIGITS, metavar='N',
                   help=f'use N of the {DIGITS} digits (50 or more), drawn in proportion to each digit '
                        f'(default: all); e.g. --samples 500 --epochs 5 --batch-size 32 for a quick run')
    p.add_argument('--no-compare', action='store_true',
                   help='skip timing the Loader against a PyTorch DataLoader')
    p.add_argument('-q', '--quiet', action='store_true', help='no progress bars')
    p.set_defaults(run=run_demo)


def _check(args) -> None:
    """Refuse values that parse but cannot work, naming the flag (one line from the cli)."""
    if not 8 <= args.image_size <= 256:
        raise ValueError(f"--image-size must be from 8 to 256 pixels, got {args.image_size}")
    if not 50 <= args.samples <= DIGITS:
        raise ValueError(f"--samples must be from 50 to {DIGITS} (the digits scikit-learn has), "
                         f"got {args.samples}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {args.lr}")
    if args.dir is not None and os.path.exists(args.dir) and not os.path.isdir(args.dir):
        raise ValueError(f"--dir {args.dir!r} is not a directory")


def run_demo(args) -> int:
    """Run the demo with the parsed ``args``; returns the exit status."""
    _check(args)
    # without scikit-learn, this fails (saying what to install) before anything is written
    from .data import load_digits_images, split_digits

    images, labels = load_digits_images(args.image_size)
    train_split, test_split = split_digits(images, labels, test_fraction=TEST_FRACTION,
                                           samples=args.samples, seed=args.seed)
    if args.batch_size > len(train_split):
        raise ValueError(f"--batch-size {args.batch_size} is more than the {len(train_split)} training "
                         f"images of --samples {args.samples}: use a smaller batch size or more samples")
    which = f"{args.samples} of the {DIGITS}" if args.samples < DIGITS else f"the {DIGITS}"
    print(f"digits: {which} handwritten digits of scikit-learn (8x8 pixels, 16 grey levels), scaled to "
          f"{args.image_size}x{args.image_size} RGB, {len(train_split)} for training and {len(test_split)} "
          f"for testing", flush=True)
    if args.dir is None:
        directory, temporary = tempfile.mkdtemp(prefix='ffcv-demo-'), True
    else:
        directory, temporary = args.dir, False
        os.makedirs(directory, exist_ok=True)
    try:
        accuracy_line = _run_in(directory, train_split, test_split, args)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    print(f"removed {directory}" if temporary and not args.keep else f"kept {directory}")
    print(accuracy_line)
    return 0


def _run_in(directory: str, train_split, test_split, args) -> str:
    import torch
    from ffcv_format.writer import default_num_workers

    from .data import write_beton
    from .loading import digits_loader, translate_padding
    from .model import DigitNet
    from .training import evaluate, train

    progress = not args.quiet
    workers = args.workers or default_num_workers()
    shift = translate_padding(args.image_size)
    paths = {}
    for part, split in (('train', train_split), ('test', test_split)):
        paths[part] = os.path.join(directory, f'digits-{part}.beton')
        started = time.perf_counter()
        write_beton(paths[part], split, jpeg_quality=args.jpeg_quality, workers=workers, progress=progress)
        print(f"wrote {paths[part]}: {len(split)} images as JPEG (quality {args.jpeg_quality}), "
              f"{human_size(os.path.getsize(paths[part]))} in {time.perf_counter() - started:.1f} s",
              flush=True)

    torch.manual_seed(args.seed)
    model = DigitNet(image_size=args.image_size)
    train_loader = digits_loader(paths['train'], batch_size=args.batch_size, workers=workers,
                                 seed=args.seed, shift=shift)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"training a CNN of {parameters:,} parameters on the CPU (1 torch thread): {args.epochs} epochs of "
          f"{len(train_loader)} batches of {args.batch_size}, random shifts up to {shift} px, "
          f"{train_loader.num_workers} loader threads", flush=True)
    started = time.perf_counter()
    # One thread for torch: the same --seed then gives the same weights whatever the number
    # of cores (a sum split over threads rounds differently), the loader's threads keep the
    # other cores, and on a busy machine torch's threads waiting for each other at every
    # layer made training several times slower, for a network this small.
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(model, train_loader, epochs=args.epochs, lr=args.lr, progress=progress,
              on_epoch=lambda r: print(f"epoch {r.epoch}/{args.epochs}: loss {r.loss:.3f}, train accuracy "
                                       f"{100 * r.accuracy:.1f}% ({r.seconds:.1f} s)", flush=True))
        test_loader = digits_loader(paths['test'], batch_size=args.batch_size, workers=workers,
                                    seed=args.seed, shift=None)
        correct, total = evaluate(model, test_loader, progress=progress)
    finally:
        torch.set_num_threads(torch_threads)
    print(f"trained in {time.perf_counter() - started:.1f} s; evaluated on {paths['test']}", flush=True)

    if not args.no_compare:
        _compare(paths['train'], args, workers, shift, progress)
    return f"test accuracy: {100 * correct / total:.1f}% ({correct} of {total} test images)"


def _compare(path: str, args, workers: int, shift: int, progress: bool) -> None:
    from .comparison import time_epochs, torch_dataloader
    from .loading import digits_loader

    print(f"data loading alone (decode JPEG, random shift up to {shift} px, batches of {args.batch_size}, "
          f"{workers} workers), whole epochs of {os.path.basename(path)} for about a second after a warm-up "
          f"epoch:", flush=True)
    loader = digits_loader(path, batch_size=args.batch_size, workers=workers, seed=args.seed, shift=shift)
    ffcv = time_epochs('ffcv Loader', loader, progress=progress)
    print(f"  ffcv Loader:      {ffcv.images_per_second:9,.0f} images/s ({ffcv.epochs} epochs)", flush=True)
    dataloader = torch_dataloader(path, batch_size=args.batch_size, workers=workers, seed=args.seed,
                                  shift=shift)
    other = time_epochs('torch DataLoader', dataloader, progress=progress)
    del dataloader   # stops its worker processes
    print(f"  torch DataLoader: {other.images_per_second:9,.0f} images/s ({other.epochs} epochs); "
          f"ffcv Loader / DataLoader: {ffcv.images_per_second / other.images_per_second:.1f}x", flush=True)
