"""What each image transform of ffcv-ops costs next to the JPEG decode it follows.

For every transform (those of ffcv-ops, and those other modules of ``ffcv_ops.transforms``
add when they are present: a missing one is skipped with a note), the cost per 224x224
RGB image of one call on a chunk of 64 images, on one thread (the unit of work of a
loader's worker thread), median of repeats; next to it the cost per image of what comes
before it in an ImageNet pipeline: decoding a ~256 px JPEG and resizing a random crop to
224x224 (``RandomResizedCropRGBImageDecoder``, run as the loader runs it), and the ratio.

Random transforms run with their probability at 1 (the cost of an image they change);
the ``p`` column says so. Each transform is called the way the pipeline calls it (its
generated code in the pipeline's call form), in place on a fresh copy of decoded images
every repeat; the copy is not timed.

    python benchmarks/transform_costs.py [--repeats 7] [--images 64]
"""
import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np
import simplejpeg
from ffcv_format import RGBImageField
from ffcv_format.testing import photo_like_image, write_dataset

from ffcv_ops import RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder
from ffcv_ops.testing import make_pipeline, run_batch, storage_state_of

SIDE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255

# (module, class name, keyword arguments, the p written in the table)
TRANSFORMS = [
    ('ffcv_ops.transforms.augment', 'RandomHorizontalFlip', dict(flip_prob=1.0), '1'),
    ('ffcv_ops.transforms.vertical_flip', 'RandomVerticalFlip', dict(flip_prob=1.0), '1'),
    ('ffcv_ops.transforms.augment', 'RandomTranslate', dict(padding=8), '-'),
    ('ffcv_ops.transforms.augment', 'Cutout', dict(crop_size=112), '-'),
    ('ffcv_ops.transforms.erasing', 'RandomCutout', dict(prob=1.0, crop_size=112), '1'),
    ('ffcv_ops.transforms.erasing', 'RandomErasing', dict(prob=1.0), '1'),
    ('ffcv_ops.transforms.erasing', 'RandomErasing', dict(prob=1.0, fast_fill=False), '1'),
    ('ffcv_ops.transforms.color', 'RandomBrightness', dict(magnitude=0.4, p=1.0), '1'),
    ('ffcv_ops.transforms.color', 'RandomContrast', dict(magnitude=0.4, p=1.0), '1'),
    ('ffcv_ops.transforms.color', 'RandomSaturation', dict(magnitude=0.4, p=1.0), '1'),
    ('ffcv_ops.transforms.pixel', 'Solarization', dict(solarization_prob=1.0), '1'),
    ('ffcv_ops.transforms.pixel', 'RandomGrayscale', dict(p=1.0), '1'),
    ('ffcv_ops.transforms.blur', 'GaussianBlur', dict(kernel_size=23, p=1.0), '1'),
    ('ffcv_ops.transforms.blur', 'GaussianBlur', dict(kernel_size=9, p=1.0), '1'),
    ('ffcv_ops.transforms.crop', 'RandomResizedCrop', dict(scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), size=SIDE), '-'),
    ('ffcv_ops.transforms.normalize', 'NormalizeImage', dict(mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                                             type=np.dtype('float32')), '-'),
    ('ffcv_ops.transforms.mixup', 'ImageMixup', dict(alpha=0.4, same_lambda=False), '-'),
    # added by other modules of ffcv_ops.transforms, when present
    ('ffcv_ops.transforms.color_jitter', 'ColorJitter', dict(brightness=0.4, contrast=0.4, saturation=0.4,
                                                             hue=0.1), '-'),
    ('ffcv_ops.transforms.affine', 'RandomAffine', dict(degrees=15, translate=(0.1, 0.1)), '-'),
    ('ffcv_ops.transforms.affine', 'RandomRotation', dict(degrees=15), '-'),
    ('ffcv_ops.transforms.cutmix', 'CutMix', dict(alpha=1.0), '-'),
    (('ffcv_ops.transforms.policies', 'ffcv_ops.transforms.autoaugment', 'ffcv_ops.transforms.randaugment',
      'ffcv_ops.transforms.rand_augment'), 'RandAugment', dict(num_ops=2, magnitude=9), '-'),
    (('ffcv_ops.transforms.policies', 'ffcv_ops.transforms.autoaugment', 'ffcv_ops.transforms.trivial_augment',
      'ffcv_ops.transforms.trivialaugment', 'ffcv_ops.transforms.randaugment'), 'TrivialAugmentWide', dict(), '-'),
]


def find_class(modules, name):
    """The class ``name`` from the first of ``modules`` that has it, or None."""
    for module_name in (modules,) if isinstance(modules, str) else modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    return None


def median_seconds(run, prepare, repeats):
    times = []
    for _ in range(repeats):
        prepare()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_files(directory, count, seed=0):
    """A JPEG file of ~256 px photos (the decode's input) and a raw file of 224x224 images."""
    rng = np.random.default_rng(seed)
    photos = []
    for _ in range(count):
        short = int(rng.integers(240, 272))
        long = int(short * rng.uniform(1.2, 1.45))
        shape = (short, long) if rng.random() < 0.7 else (long, short)
        photos.append(photo_like_image(rng, *shape))
    jpeg = write_dataset(os.path.join(directory, 'jpeg.beton'),
                         {'image': RGBImageField(write_mode='jpg', jpeg_quality=90)}, [(p,) for p in photos],
                         num_workers=1)
    crops = [cv2.resize(p, (SIDE, SIDE), interpolation=cv2.INTER_AREA) for p in photos]
    raw = write_dataset(os.path.join(directory, 'raw.beton'), {'image': RGBImageField(write_mode='raw')},
                        [(c,) for c in crops], num_workers=1)
    encoded = [simplejpeg.encode_jpeg(np.ascontiguousarray(p), quality=90, colorspace='RGB') for p in photos]
    return jpeg, raw, encoded


def jpeg_decode_cost(encoded, repeats):
    """Seconds per image of the JPEG decode alone (simplejpeg, what a second view of one
    image would not need to repeat if views shared a decode)."""
    def run():
        for data in encoded:
            simplejpeg.decode_jpeg(data, colorspace='RGB')
    run()
    return median_seconds(run, lambda: None, repeats) / len(encoded)


def decode_cost(reader, count, repeats):
    """Seconds per image: decoding and random-resized-cropping a chunk of ``count`` JPEGs."""
    pipeline = make_pipeline(reader, 'image', [RandomResizedCropRGBImageDecoder((SIDE, SIDE))])
    pipeline.declare()
    pipeline.generate()
    buffers = pipeline.allocate(count)
    state = storage_state_of(reader)
    indices = np.arange(count)
    run_batch(pipeline, state, indices, chunk=count, buffers=buffers)          # warm up
    seconds = median_seconds(lambda: run_batch(pipeline, state, indices, chunk=count, buffers=buffers),
                             lambda: None, repeats)
    return seconds / count


def transform_cost(raw, op, count, repeats):
    """Seconds per image of ``op`` on a chunk of ``count`` decoded 224x224 images, called
    as the pipeline calls it (step 1 after a decoder of the raw images)."""
    pipeline = make_pipeline(raw, 'image', [SimpleRGBImageDecoder(), op])
    pipeline.declare()
    pipeline.generate()
    buffers = pipeline.allocate(count)
    indices = np.arange(count, dtype=np.int64)
    seeds = pipeline.op_seeds(0, 0, 0)
    source = np.stack([raw.read_field(i, 'image') for i in range(count)])
    work = np.empty_like(source)
    step = pipeline.steps[1]
    destination = None if buffers[1] is None else buffers[1][:count]

    def prepare():
        np.copyto(work, source)

    def run():
        step.call(work, destination, indices, seeds[1])

    prepare()
    run()                                   # compiles (or loads from the cache)
    return median_seconds(run, prepare, repeats) / count


def short_label(name, kwargs):
    """``Name(argument=value, ...)`` as given in TRANSFORMS, arrays shown as ``...``."""
    shown = ', '.join(f"{k}={'...' if isinstance(v, np.ndarray) else v}" for k, v in kwargs.items())
    label = f"{name}({shown})"
    return label if len(label) <= 58 else label[:55] + '...'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--images', type=int, default=64, help='images per chunk')
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory(prefix='transform-costs-') as directory:
        jpeg, raw, encoded = make_files(directory, args.images)
        decode = decode_cost(jpeg, args.images, args.repeats)
        jpeg_only = jpeg_decode_cost(encoded, args.repeats)
        decode_before = decode
        print(f"one thread, chunks of {args.images} images of {SIDE}x{SIDE}x3, median of {args.repeats}")
        print(f"decode: JPEG ~256 px -> RandomResizedCropRGBImageDecoder({SIDE}): {decode * 1e6:.0f} us/image "
              f"(of which the JPEG decode alone, simplejpeg: {jpeg_only * 1e6:.0f} us)\n")
        header = f"| {'transform':<58} | {'p':>2} | {'us/image':>9} | {'decode us':>9} | {'transform/decode':>16} |"
        print(header)
        print(''.join(c if c == '|' else '-' for c in header))
        notes = []
        for modules, name, kwargs, p in TRANSFORMS:
            cls = find_class(modules, name)
            if cls is None:
                notes.append(f"{name}: not present (looked in {modules}), skipped")
                continue
            try:
                op = cls(**kwargs)
                cost = transform_cost(raw, op, args.images, args.repeats)
            except Exception as error:          # a transform of another shape: say so, go on
                notes.append(f"{name}({kwargs}): skipped, {type(error).__name__}: {error}")
                continue
            label = short_label(name, kwargs)
            print(f"| {label:<58} | {p:>2} | {cost * 1e6:>9.1f} | {decode * 1e6:>9.0f} | {cost / decode:>16.3f} |")
        decode_after = decode_cost(jpeg, args.images, args.repeats)
        print(f"\ndecode measured again after the transforms: {decode_after * 1e6:.0f} us/image "
              f"(before: {decode_before * 1e6:.0f}; ratios use the first: compare them with this drift in mind)")
        for note in notes:
            print(f"note: {note}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
