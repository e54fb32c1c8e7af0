"""An ImageNet-like JPEG image folder, generated from real photos.

    python benchmarks/imagenet_like.py ROOT [--n 3000] [--classes 10] [--seed 0]

Writes ``ROOT/<class>/<class>_<index>.JPEG`` (classes ``n00000000``, ``n00000001``, ...;
image ``i`` is in class ``i % n_classes``), the layout of ImageNet's training folder.

Where the pixels come from: the real photographs that ship inside the scikit-image wheel
(``skimage.data``: astronaut, coffee, chelsea, rocket, hubble_deep_field,
immunohistochemistry, retina, the two views of stereo_motorcycle, and the grayscale
photos camera, moon, coins, grass, gravel, brick) and scikit-learn
(``load_sample_images()``: china, flower). Images that scikit-image would download with
pooch are not used. Each generated image is a random crop of one photo (random area and
aspect ratio), maybe mirrored, with mild colour changes (brightness, contrast,
saturation, per-channel gain; grayscale photos get a tint), resized to a size drawn from
ImageNet's distribution, with a little sensor-like noise (the sources are small, so
crops are often upscaled, which would leave them smoother than camera JPEGs), and saved
as a JPEG of quality 90.

Sizes: ImageNet's training images have a median of 500x375; most have 500 pixels on
their long side (landscape 500x375 or 500x333, portrait 375x500, some 500x500), the
rest spread around it. Here: 72% landscape, 20% portrait, 8% square; the long side is
500 for 65% of images, otherwise log-normal around 500 within [200, 800]; the short side
is 3/4 (most), 2/3 or 9/16..4/5 of it, at least 150.

The folder is the same for the same ``(n_images, n_classes, seed)`` and library
versions; a manifest ``ROOT/.imagenet_like.json`` records what was generated, and a
later call with the same arguments returns at once if every file is there.
"""
import argparse
from concurrent.futures import ThreadPoolExecutor
import json
import os

import numpy as np

MANIFEST = '.imagenet_like.json'
FORMAT_VERSION = 1
JPEG_QUALITY = 90

_SKIMAGE_COLOUR = ['astronaut', 'coffee', 'chelsea', 'rocket', 'hubble_deep_field',
                   'immunohistochemistry', 'retina', 'stereo_motorcycle']
_SKIMAGE_GRAY = ['camera', 'moon', 'coins', 'grass', 'gravel', 'brick']
_GRAY_SHARE = 0.08  # of images cut from grayscale photos (ImageNet has a few percent)


def class_name(index):
    """The folder name of class ``index``: ``n00000003`` for 3 (WordNet-id-like)."""
    return f"n{index:08d}"


def class_index(path):
    """The class (label) of a file made by :func:`make_image_folder`, from its folder name."""
    return int(os.path.basename(os.path.dirname(os.fspath(path)))[1:])


def load_source_photos():
    """The real photos to cut images from: a list of ``(name, HxWx3 uint8 RGB, weight)``.

    Only images bundled in the scikit-image and scikit-learn wheels are used (no network).
    """
    photos = []
    try:
        from skimage import data
    except ImportError:
        data = None
    if data is not None:
        for name in _SKIMAGE_COLOUR:
            try:
                image = getattr(data, name)()
            except Exception:  # e.g. a future version moves it out of the wheel
                continue
            if name == 'stereo_motorcycle':
                left, right, _disparity = image
                photos += [('stereo_motorcycle_left', left, 0.5), ('stereo_motorcycle_right', right, 0.5)]
            else:
                photos.append((name, image[:, :, :3], 1.0))
        grays = []
        for name in _SKIMAGE_GRAY:
            try:
                image = getattr(data, name)()
            except Exception:
                continue
            grays.append((name, np.repeat(image[:, :, None], 3, axis=2)))
        colour_weight = sum(weight for _, _, weight in photos) + 2  # + scikit-learn's two
        for name, image in grays:
            photos.append((name, image, colour_weight * _GRAY_SHARE / (1 - _GRAY_SHARE) / len(grays)))
    try:
        from sklearn.datasets import load_sample_images
        bunch = load_sample_images()
        for filename, image in zip(bunch.filenames, bunch.images):
            photos.append((os.path.splitext(os.path.basename(filename))[0], image, 1.0))
    except ImportError:
        pass
    if not photos:
        raise ImportError("make_image_folder needs real photos from scikit-image or scikit-learn: "
                          "pip install scikit-image scikit-learn")
    return [(name, np.ascontiguousarray(image, dtype=np.uint8), float(weight))
            for name, image, weight in photos]


def sample_output_size(rng):
    """A (width, height) from an ImageNet-like size distribution (median 500x375)."""
    if rng.random() < 0.65:
        long_side = 500
    else:
        long_side = int(np.clip(round(500 * np.exp(rng.normal(0.0, 0.25))), 200, 800))
    u = rng.random()
    if u < 0.55:
        aspect = 0.75
    elif u < 0.75:
        aspect = 2 / 3
    else:
        aspect = rng.uniform(9 / 16, 4 / 5)
    short_side = max(150, int(round(long_side * aspect)))
    orientation = rng.random()
    if orientation < 0.72:
        return long_side, short_side
    if orientation < 0.92:
        return short_side, long_side
    return long_side, long_side


def _crop_box(rng, height, width, out_w, out_h):
    """A crop of the photo with about the output's aspect ratio and a random area."""
    aspect = out_w / out_h * np.exp(rng.uniform(-0.1, 0.1))
    max_w = min(width, height * aspect)
    area_fraction = rng.uniform(0.15, 1.0)
    crop_w = max(16, int(round(max_w * np.sqrt(area_fraction))))
    crop_h = max(16, min(height, int(round(crop_w / aspect))))
    crop_w = min(crop_w, width)
    y = int(rng.integers(0, height - crop_h + 1))
    x = int(rng.integers(0, width - crop_w + 1))
    return x, y, crop_w, crop_h


def _colour_jitter(rng, image, tint):
    pixels = image.astype(np.float32)
    gray = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    saturation = rng.uniform(0.8, 1.2)
    pixels = gray[:, :, None] + (pixels - gray[:, :, None]) * saturation
    mean = float(gray.mean())
    contrast = rng.uniform(0.85, 1.15)
    brightness = rng.uniform(0.85, 1.15)
    gain = rng.uniform(0.95, 1.05, size=3).astype(np.float32)
    if tint:  # a grayscale photo: a warm or cool cast, like an old or white-balanced print
        gain *= np.array([1.0, 0.97, 0.9] if rng.random() < 0.5 else [0.92, 0.97, 1.0], np.float32)
    pixels = ((pixels - mean) * contrast + mean * brightness) * gain
    pixels += rng.normal(0.0, rng.uniform(1.0, 3.0), size=pixels.shape).astype(np.float32)
    return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def make_image(photos, weights, seed, index):
    """Image ``index`` of the folder for ``seed``: an HxWx3 uint8 RGB array."""
    import cv2
    rng = np.random.default_rng([seed, index])
    which = int(rng.choice(len(photos), p=weights))
    name, photo, _ = photos[which]
    out_w, out_h = sample_output_size(rng)
    x, y, crop_w, crop_h = _crop_box(rng, photo.shape[0], photo.shape[1], out_w, out_h)
    crop = photo[y:y + crop_h, x:x + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    shrinking = out_w * out_h < crop_w * crop_h
    image = cv2.resize(np.ascontiguousarray(crop), (out_w, out_h),
                       interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    is_gray = bool(np.array_equal(photo[:8, :8, 0], photo[:8, :8, 1])
                   and np.array_equal(photo[:8, :8, 1], photo[:8, :8, 2]))
    return _colour_jitter(rng, image, tint=is_gray)


def _relative_path(index, n_classes):
    cls = class_name(index % n_classes)
    return os.path.join(cls, f"{cls}_{index}.JPEG")


def _read_manifest(root):
    try:
        with open(os.path.join(root, MANIFEST)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _is_complete(root, manifest):
    for relative, size in manifest['files']:
        try:
            if os.path.getsize(os.path.join(root, relative)) != size:
                return False
        except OSError:
            return False
    return True


def make_image_folder(root, n_images, n_classes=10, seed=0, *, num_workers=None, progress=False):
    """Generate (or find, if already there) an ImageNet-like JPEG folder; return its files.

    >>> paths = make_image_folder('/tmp/imagenet_like', 3000)       # doctest: +SKIP
    >>> paths[0]                                                     # doctest: +SKIP
    '/tmp/imagenet_like/n00000000/n00000000_0.JPEG'
    >>> class_index(paths[13])                                       # doctest: +SKIP
    3

    Returns the absolute paths of the ``n_images`` files, image ``i`` at position ``i``
    (in class ``i % n_classes``; :func:`class_index` gives a file's class). The same
    arguments give the same files. ``root`` must be empty, missing, or a folder made by
    an earlier call (whose files are replaced if the arguments differ).
    """
    import cv2
    root = os.path.abspath(os.fspath(root))
    n_images, n_classes, seed = int(n_images), int(n_classes), int(seed)
    if n_images < 1 or n_classes < 1:
        raise ValueError(f"n_images and n_classes must be positive, got {n_images} and {n_classes}")
    paths = [os.path.join(root, _relative_path(i, n_classes)) for i in range(n_images)]
    wanted = {'version': FORMAT_VERSION, 'n_images': n_images, 'n_classes': n_classes,
              'seed': seed, 'jpeg_quality': JPEG_QUALITY}

    old = _read_manifest(root)
    if old is not None and {k: old.get(k) for k in wanted} == wanted and _is_complete(root, old):
        return paths
    if old is None and os.path.isdir(root) and os.listdir(root):
        raise FileExistsError(f"{root!r} is not empty and was not made by make_image_folder; "
                              f"pass an empty or new folder")
    if old is not None:  # made by us with other arguments: remove what we made
        try:
            os.remove(os.path.join(root, MANIFEST))
        except OSError:
            pass
        for relative, _size in old.get('files', []):
            try:
                os.remove(os.path.join(root, relative))
            except OSError:
                pass

    photos = load_source_photos()
    weights = np.array([w for _, _, w in photos], dtype=np.float64)
    weights /= weights.sum()
    for c in range(min(n_classes, n_images)):
        os.makedirs(os.path.join(root, class_name(c)), exist_ok=True)

    def write(index):
        image = make_image(photos, weights, seed, index)
        ok, data = cv2.imencode('.jpg', cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode image {index} as JPEG")
        path = paths[index]
        temporary = path + '.tmp'
        with open(temporary, 'wb') as f:
            f.write(data.tobytes())
        os.replace(temporary, path)
        return data.size, image.shape[1], image.shape[0]

    workers = num_workers or len(os.sched_getaffinity(0))
    results = []
    with ThreadPoolExecutor(workers) as pool:
        for k, result in enumerate(pool.map(write, range(n_images))):
            results.append(result)
            if progress and (k + 1) % 500 == 0:
                print(f"  {k + 1}/{n_images} images", flush=True)
    manifest = dict(wanted, sources=[name for name, _, _ in photos],
                    files=[[_relative_path(i, n_classes), size] for i, (size, _, _) in enumerate(results)],
                    sizes=[[w, h] for _, w, h in results])
    temporary = os.path.join(root, MANIFEST + '.tmp')
    with open(temporary, 'w') as f:
        json.dump(manifest, f)
    os.replace(temporary, os.path.join(root, MANIFEST))
    return paths


def describe(root):
    """A one-paragraph summary of a folder made by :func:`make_image_folder`."""
    manifest = _read_manifest(os.path.abspath(os.fspath(root)))
    if manifest is None:
        return f"{root}: no {MANIFEST}"
    sizes = np.array(manifest['sizes'])
    nbytes = np.array([size for _, size in manifest['files']])
    widths, heights = sizes[:, 0], sizes[:, 1]
    landscape = np.mean(widths > heights)
    return (f"{len(nbytes)} JPEGs in {manifest['n_classes']} classes from {len(manifest['sources'])} "
            f"photos ({', '.join(manifest['sources'])}); median size {int(np.median(widths))}x"
            f"{int(np.median(heights))}, widths {widths.min()}..{widths.max()}, heights "
            f"{heights.min()}..{heights.max()}, {landscape:.0%} landscape; "
            f"{nbytes.mean() / 1024:.0f} KiB per file on average ({nbytes.sum() / 2**20:.0f} MiB in all)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help='folder to write (created; reused if already complete)')
    parser.add_argument('--n', type=int, default=3000, help='number of images (default 3000)')
    parser.add_argument('--classes', type=int, default=10, help='number of class folders (default 10)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=None, help='threads (default: all cores)')
    args = parser.parse_args()
    import time
    t0 = time.perf_counter()
    make_image_folder(args.root, args.n, args.classes, args.seed, num_workers=args.workers, progress=True)
    print(f"{describe(args.root)} [{time.perf_counter() - t0:.1f} s]")


if __name__ == '__main__':
    main()
