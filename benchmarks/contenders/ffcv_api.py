"""Contenders written against FFCV 1.0's public API only (``ffcv.loader``, ``ffcv.fields``, ...).

The same code runs in two interpreters: ours, where the ``ffcv`` package re-exports this
project's Loader under FFCV 1.0's import paths, and FFCV 1.0.2's own virtual environment.
So both libraries load the same ``.beton`` with the very same pipeline definition.

spec keys: ``beton``, ``batch_size``, ``workers``, ``order`` (``'RANDOM'`` / ``'SEQUENTIAL'``),
``output_size`` (JPEG), ``seed``; see each class.
"""
import os
import time

import numpy as np
from harness import timed_epoch, timed_until, timed_warmup

IMPORTS = ['torch', 'ffcv.loader', 'ffcv.fields.decoders', 'ffcv.transforms']
CIFAR_MEAN = np.array([125.307, 122.961, 113.8575])
CIFAR_STD = np.array([51.5865, 50.847, 51.255])


def _loader(spec, pipelines):
    from ffcv.loader import Loader, OrderOption
    return Loader(spec['beton'], batch_size=spec['batch_size'], num_workers=spec['workers'],
                  order=getattr(OrderOption, spec.get('order', 'RANDOM')), drop_last=True,
                  os_cache=spec.get('os_cache', True), seed=spec.get('seed', 0), pipelines=pipelines)


class _LoaderContender:
    def __init__(self, spec):
        self.spec = spec

    def pipelines(self):
        raise NotImplementedError

    def warmup(self):
        self.loader, result = timed_warmup(lambda: _loader(self.spec, self.pipelines()), IMPORTS)
        return result

    def epoch(self):
        return timed_epoch(self.loader)

    def run_until(self, stop_file, max_seconds):
        """Epochs without a break until the parent says stop (the GIL sampling of ``harness.gil_profile``)."""
        return timed_until(self.loader, stop_file, max_seconds)


class JpegRRC(_LoaderContender):
    """RandomResizedCrop to ``output_size`` + flip, uint8 NCHW (FFCV's ImageNet recipe on the CPU)."""

    def pipelines(self):
        from ffcv.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
        from ffcv.transforms import RandomHorizontalFlip, ToTensor, ToTorchImage
        size = self.spec['output_size']
        return {'image': [RandomResizedCropRGBImageDecoder((size, size)), RandomHorizontalFlip(),
                          ToTensor(), ToTorchImage()],
                'label': [IntDecoder(), ToTensor()]}


class JpegCenterCrop(_LoaderContender):
    """Validation: centre crop of ``spec['ratio']`` (224/256) of the short side, resized to
    ``output_size``, no flip, uint8 NCHW (FFCV's ImageNet validation recipe on the CPU)."""

    def pipelines(self):
        from ffcv.fields.decoders import CenterCropRGBImageDecoder, IntDecoder
        from ffcv.transforms import ToTensor, ToTorchImage
        size = self.spec['output_size']
        return {'image': [CenterCropRGBImageDecoder((size, size), ratio=self.spec['ratio']),
                          ToTensor(), ToTorchImage()],
                'label': [IntDecoder(), ToTensor()]}


class CifarRaw(_LoaderContender):
    """Raw 32x32 images: flip + translate (2 px) + normalize to float32, NCHW (FFCV's CIFAR recipe)."""

    def pipelines(self):
        from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
        from ffcv.transforms import NormalizeImage, RandomHorizontalFlip, RandomTranslate, ToTensor, ToTorchImage
        return {'image': [SimpleRGBImageDecoder(), RandomHorizontalFlip(),
                          RandomTranslate(padding=2, fill=tuple(map(int, CIFAR_MEAN))),
                          NormalizeImage(CIFAR_MEAN, CIFAR_STD, np.float32), ToTensor(), ToTorchImage()],
                'label': [IntDecoder(), ToTensor()]}


class Arrays(_LoaderContender):
    """One NDArray or Bytes field (``spec['kind']``), as torch tensors."""

    def pipelines(self):
        from ffcv.fields.decoders import BytesDecoder, NDArrayDecoder
        from ffcv.transforms import ToTensor
        decoder = BytesDecoder() if self.spec['kind'] == 'bytes' else NDArrayDecoder()
        return {'data': [decoder, ToTensor()]}

    def warmup(self):
        self.loader, result = timed_warmup(lambda: _loader(self.spec, self.pipelines()), IMPORTS,
                                           count=lambda batch: batch[0].shape[0])
        return result

    def epoch(self):
        return timed_epoch(self.loader, count=lambda batch: batch[0].shape[0])


class Writer:
    """Conversion: ``DatasetWriter`` over the first ``spec['images']`` original JPEG files
    (decoded with OpenCV in the dataset, as a user's dataset would hand over arrays), stored
    as JPEG at most ``max_resolution`` px, quality ``quality``, ``workers`` writer workers."""

    def __init__(self, spec):
        self.spec = spec
        self.paths = spec['paths'][:spec['images']]

    def _write(self):
        import cv2
        from ffcv.fields import IntField, RGBImageField
        from ffcv.writer import DatasetWriter
        paths = self.paths

        class Files:
            def __len__(self):
                return len(paths)

            def __getitem__(self, index):
                image = cv2.cvtColor(cv2.imread(paths[index], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                return image, index % 10

        out = os.path.join(self.spec['tmp'], f'writer-{os.getpid()}.beton')
        writer = DatasetWriter(out, {'image': RGBImageField(write_mode='jpg',
                                                            max_resolution=self.spec['max_resolution'],
                                                            jpeg_quality=self.spec['quality']),
                                     'label': IntField()}, num_workers=self.spec['workers'])
        start = time.perf_counter()
        writer.from_indexed_dataset(Files())
        seconds = time.perf_counter() - start
        os.remove(out)
        return {'rate': len(paths) / seconds, 'images': len(paths)}

    def warmup(self):
        import cv2
        cv2.setNumThreads(1)
        result = self._write()
        return {'warmup_rate': result['rate'], 'images_per_epoch': result['images']}

    def epoch(self):
        return self._write()
