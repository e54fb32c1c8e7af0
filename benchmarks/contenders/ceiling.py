"""Baselines that are not loaders: what the hardware gives to the same work.

- ``JpegDecode``: the decode ceiling. One thread (``cv2.setNumThreads(1)``) decoding the JPEG
  bytes stored in the ``.beton`` with ``cv2.imdecode``, resizing a random-resized-crop box to
  ``output_size`` (INTER_AREA) into a batch buffer and mirroring half of them, in random
  order; ``rate`` is its images/s times ``workers``. ``parallel`` runs the same loop in
  ``workers`` threads at once (for information).
- ``MemCopy``: a plain memory copy of the same bytes a non-image epoch delivers: the file's
  samples copied, one batch at a time, from memory into a batch buffer (one thread, ``np.copyto``);
  from anonymous memory (``spec['source']`` absent) or from a mapping of the file in the page
  cache (``'page cache'``), which is how a loader with ``os_cache=True`` reads them.
- ``Encode``: the writer's per-image work (read a file, decode, resize to at most
  ``max_resolution``, encode JPEG at ``quality``) on one thread; ``rate`` is times ``workers``.
"""
import random
import threading
import time

import numpy as np
from contenders.dataloader import rrc_box


def sample_pointers(reader, field):
    """Where each sample of ``field`` is stored: the pointer column of its metadata (images:
    ``data_ptr``; Bytes: ``ptr``; an NDArray field's metadata is the pointer column itself)."""
    meta = reader.metadata[field]
    names = meta.dtype.names or ()
    return meta['data_ptr'] if 'data_ptr' in names else meta['ptr'] if 'ptr' in names else meta


def sample_sizes(reader, field):
    """Bytes stored for each sample of ``field`` (int64 array)."""
    return np.array([reader.allocation_size(int(p)) for p in sample_pointers(reader, field)], dtype=np.int64)


def stored_jpegs(path):
    """The JPEG bytes of every image stored in the .beton at ``path`` (read-only views)."""
    from ffcv_format import Reader
    from ffcv_format.fields.image import MODE_JPEG
    reader = Reader(path)
    if not np.all(reader.metadata['image']['mode'] == MODE_JPEG):
        raise ValueError(f"{path}: not every image is stored as JPEG")
    return reader, [reader.read(int(ptr), reader.allocation_size(int(ptr)))
                    for ptr in sample_pointers(reader, 'image')]


def decode_crop_flip(cv2, jpegs, order, rand, batch, scratch, size):
    """The per-image work of the loader, in plain OpenCV calls, into a batch buffer."""
    flag = getattr(cv2, 'IMREAD_COLOR_RGB', cv2.IMREAD_COLOR)  # RGB straight from the decoder
    batch_size = len(batch)
    for k, index in enumerate(order):
        image = cv2.imdecode(jpegs[index], flag)
        x, y, w, h = rrc_box(rand, image.shape[1], image.shape[0])
        slot = batch[k % batch_size]
        if rand.random() < 0.5:
            cv2.resize(image[y:y + h, x:x + w], (size, size), dst=scratch, interpolation=cv2.INTER_AREA)
            cv2.flip(scratch, 1, dst=slot)
        else:
            cv2.resize(image[y:y + h, x:x + w], (size, size), dst=slot, interpolation=cv2.INTER_AREA)


class JpegDecode:
    def __init__(self, spec):
        import cv2
        cv2.setNumThreads(1)  # the single-thread rate: no OpenCV thread pool inside resize
        self.cv2, self.spec, self.size = cv2, spec, spec['output_size']
        self.reader, self.jpegs = stored_jpegs(spec['beton'])
        self.rng = np.random.default_rng(spec['seed'])
        self.rand = random.Random(spec['seed'])

    def _buffers(self):
        return (np.empty((self.spec['batch_size'], self.size, self.size, 3), np.uint8),
                np.empty((self.size, self.size, 3), np.uint8))

    def warmup(self):
        rate = self.epoch()['rate']
        return {'warmup_rate': rate, 'images_per_epoch': len(self.jpegs)}

    def epoch(self):
        """One thread over every stored image in a random order; ``rate`` is times the threads."""
        order = self.rng.permutation(len(self.jpegs))
        start = time.perf_counter()
        decode_crop_flip(self.cv2, self.jpegs, order, self.rand, *self._buffers(), self.size)
        single = len(order) / (time.perf_counter() - start)
        return {'rate': single * self.spec['workers'], 'single_thread_rate': single, 'images': len(order)}

    def parallel(self):
        """The same loop in ``workers`` threads at once, each on its share."""
        order = self.rng.permutation(len(self.jpegs))
        threads = [threading.Thread(target=decode_crop_flip,
                                    args=(self.cv2, self.jpegs, share, random.Random(self.rand.random()),
                                          *self._buffers(), self.size))
                   for share in np.array_split(order, self.spec['workers'])]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {'rate': len(order) / (time.perf_counter() - start)}


class MemCopy:
    """``spec``: ``beton`` (one field ``data``), ``batch_size``. Samples/s of copying each
    batch's bytes (the samples' total size) from a resident buffer into a batch buffer."""

    def __init__(self, spec):
        from ffcv_format import Reader
        reader = Reader(spec['beton'])
        ptrs, sizes = sample_pointers(reader, 'data'), sample_sizes(reader, 'data')
        self.n = len(sizes)
        self.batch = batch = spec['batch_size']
        self.batch_bytes = [int(sizes[i:i + batch].sum()) for i in range(0, self.n - batch + 1, batch)]
        if spec.get('source') == 'page cache':
            # the file's own bytes through a read-only mapping of the page cache (from the
            # first sample on: the samples and the gaps between pages)
            first = int(ptrs.min()) if len(ptrs) else 0
            mapped = np.memmap(spec['beton'], np.uint8, 'r')[first:]
            self.source = mapped[:int(sizes.sum())]
            self.source.sum()  # read once: resident in the page cache and mapped
        else:
            self.source = np.ones(int(sizes.sum()), np.uint8)  # anonymous memory, touched: resident
        self.destination = np.ones(max(self.batch_bytes), np.uint8)

    def warmup(self):
        return {'warmup_rate': self.epoch()['rate'], 'images_per_epoch': self.n}

    def epoch(self):
        start = time.perf_counter()
        offset = 0
        for nbytes in self.batch_bytes:
            np.copyto(self.destination[:nbytes], self.source[offset:offset + nbytes])
            offset += nbytes
        seconds = time.perf_counter() - start
        return {'rate': len(self.batch_bytes) * self.batch / seconds, 'gbps': offset / seconds / 1e9, 'images': self.n}


class Encode:
    """``spec``: ``paths``, ``images``, ``max_resolution``, ``quality``, ``workers``."""

    def __init__(self, spec):
        import cv2
        cv2.setNumThreads(1)
        self.cv2, self.spec = cv2, spec
        self.paths = spec['paths'][:spec['images']]

    def _one(self, path):
        cv2 = self.cv2
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        scale = self.spec['max_resolution'] / max(h, w)
        if scale < 1:
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, self.spec['quality']])

    def warmup(self):
        return {'warmup_rate': self.epoch()['rate'], 'images_per_epoch': len(self.paths)}

    def epoch(self):
        start = time.perf_counter()
        for path in self.paths:
            self._one(path)
        single = len(self.paths) / (time.perf_counter() - start)
        return {'rate': single * self.spec['workers'], 'single_thread_rate': single, 'images': len(self.paths)}
