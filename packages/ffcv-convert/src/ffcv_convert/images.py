"""Images as they come from files: checking, decoding, and storing them (JPEG kept as is).

Sources hand image files over as :class:`EncodedImage` values (the file's bytes and where
they came from). :class:`SourceImageField` is an ``RGBImageField`` / ``ImageField`` that
also accepts them: it decodes and re-encodes according to its settings, or, with
``keep_jpeg=True``, stores a JPEG's bytes unchanged when the image needs no resize and
the field would store it as JPEG anyway (no decode/re-encode loss). Files it writes are
plain ``RGBImageField`` files (type 2), readable by any ``.beton`` reader.
"""
import struct

import cv2
import numpy as np
from ffcv_format import ImageField
from ffcv_format.fields.base import current_sample_id
from ffcv_format.fields.image import (
    IMAGE_METADATA,
    MAX_SIDE,
    MODE_JPEG,
    target_size,
)

from .errors import BadSampleError

__all__ = ['EncodedImage', 'StoredImage', 'SourceImageField', 'jpeg_info', 'decode_image',
           'IMAGE_EXTENSIONS']

#: file name extensions taken as images (lower case), as torchvision's ImageFolder does
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_EOI = b'\xff\xd9'
_EOI_SEARCH = 1 << 16   # trailers after the EOI (e.g. MPF previews) end with their own EOI


class EncodedImage:
    """The bytes of an image file (JPEG, PNG, ...) and where they came from.

    >>> EncodedImage(open('cat.jpg', 'rb').read(), 'photos/cat.jpg')   # doctest: +SKIP
    EncodedImage('photos/cat.jpg', 48213 bytes)

    ``where`` names the file in error messages.
    """

    __slots__ = ('data', 'where')

    def __init__(self, data, where=None):
        if isinstance(data, np.ndarray):
            data = data.tobytes()
        self.data = bytes(data)
        self.where = where

    def __repr__(self):
        return f"EncodedImage({self.where!r}, {len(self.data)} bytes)"


class StoredImage:
    """An image ready to be copied into a file: storage mode, size and the stored bytes."""

    __slots__ = ('mode', 'height', 'width', 'data')

    def __init__(self, mode, height, width, data):
        self.mode, self.height, self.width, self.data = mode, height, width, data


class JPEGInfo:
    __slots__ = ('width', 'height', 'components', 'orientation', 'progressive')

    def __init__(self, width, height, components, orientation, progressive):
        self.width, self.height, self.components = width, height, components
        self.orientation, self.progressive = orientation, progressive


def _exif_orientation(segment):
    """The EXIF orientation (1..8) in an APP1 segment's payload, or None."""
    if not segment.startswith(b'Exif\0\0') or len(segment) < 14:
        return None
    tiff = segment[6:]
    endian = {b'II': '<', b'MM': '>'}.get(tiff[:2])
    if endian is None:
        return None
    try:
        (ifd,) = struct.unpack_from(endian + 'I', tiff, 4)
        (count,) = struct.unpack_from(endian + 'H', tiff, ifd)
        for k in range(count):
            tag, kind, _, value = struct.unpack_from(endian + 'HHI4s', tiff, ifd + 2 + 12 * k)
            if tag == 0x0112 and kind == 3:
                return struct.unpack_from(endian + 'H', value)[0]
    except struct.error:
        return None
    return None


def jpeg_info(data):
    """Size, component count and EXIF orientation of a JPEG, from its headers (no decoding).

    >>> info = jpeg_info(open('cat.jpg', 'rb').read())        # doctest: +SKIP
    >>> info.width, info.height, info.components               # doctest: +SKIP
    (500, 375, 3)

    Returns None when ``data`` is not a JPEG; raises :class:`ValueError` for a JPEG whose
    headers are broken or that has no end-of-image marker (a truncated file).
    """
    if len(data) < 4 or data[:3] != b'\xff\xd8\xff':
        return None
    size = len(data)
    pos = 2
    orientation = None
    while True:
        # markers may be preceded by any number of 0xFF fill bytes
        while pos < size and data[pos] == 0xFF:
            pos += 1
        if pos >= size:
            raise ValueError("truncated JPEG: the headers end before the image data")
        marker = data[pos]
        pos += 1
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # markers without a length
        if pos + 2 > size:
            raise ValueError("truncated JPEG: the headers end before the image data")
        (length,) = struct.unpack_from('>H', data, pos)
        if length < 2 or pos + length > size:
            raise ValueError("corrupt JPEG: a header segment runs past the end of the file")
        payload = data[pos + 2:pos + length]
        if marker == 0xE1 and orientation is None:
            orientation = _exif_orientation(payload)
        elif marker in _SOF_MARKERS:
            if len(payload) < 6:
                raise ValueError("corrupt JPEG: frame header too short")
            _, height, width, components = struct.unpack_from('>BHHB', payload)
            if height == 0 or width == 0:
                raise ValueError(f"corrupt JPEG: frame header says {width}x{height} pixels")
            if data.rfind(_EOI, max(0, size - _EOI_SEARCH)) < 0:
                raise ValueError("truncated JPEG: no end-of-image marker")
            return JPEGInfo(width, height, components, orientation, marker in (0xC2, 0xC6, 0xCA, 0xCE))
        elif marker in (0xDA, 0xD9):
            raise ValueError("corrupt JPEG: image data before any frame header")
        pos += length


_IMREAD = {1: cv2.IMREAD_GRAYSCALE, 3: cv2.IMREAD_COLOR, 4: cv2.IMREAD_UNCHANGED}


def decode_image(data, channels=3, check=True):
    """Decode image file bytes into an HxWxC uint8 array in RGB(A) order.

    >>> decode_image(open('cat.jpg', 'rb').read()).shape       # doctest: +SKIP
    (375, 500, 3)

    EXIF orientation is applied (the image is turned the way viewers show it). Raises
    :class:`ValueError` saying why for bytes that are not a complete, decodable image
    (``check=False`` skips the check of JPEG headers, for callers that made it).
    Formats OpenCV does not read (e.g. GIF) are decoded with Pillow when it is installed.
    """
    if len(data) == 0:
        raise ValueError("the file is empty")
    if check:
        jpeg_info(data)  # raises for truncated or broken JPEGs, which OpenCV half-decodes silently
    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, _IMREAD[channels])
    if image is None:
        image = _decode_with_pillow(data, channels)
        if image is None:
            head = bytes(data[:8])
            raise ValueError(f"not a decodable image ({len(data)} bytes starting with {head!r})")
        return image
    if image.ndim == 2:
        image = image[:, :, None]
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 4:
        if image.shape[2] == 1:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2RGBA)
        if image.shape[2] == 3:
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGBA)
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def _decode_with_pillow(data, channels):
    try:
        from PIL import Image, ImageOps
    except ImportError:
        return None
    import io
    try:
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image)
            image = image.convert({1: 'L', 3: 'RGB', 4: 'RGBA'}[channels])
            array = np.asarray(image)
    except Exception:
        return None
    return array[:, :, None] if array.ndim == 2 else array


class SourceImageField(ImageField):
    """An image field that also takes image files (:class:`EncodedImage` or ``bytes``).

    Settings are those of ``RGBImageField`` / ``ImageField`` (``write_mode``,
    ``max_resolution``, ``min_resolution``, ``jpeg_quality``, ``channels``...), plus
    ``keep_jpeg``: store a JPEG file's bytes unchanged when the image needs no resize,
    has 3 colour components and no EXIF rotation, and the field would store it as JPEG
    (``write_mode='jpg'``, or ``'smart'``/``'proportion'`` choosing JPEG for it).

    >>> field = SourceImageField(write_mode='jpg', max_resolution=512, keep_jpeg=True)
    >>> DatasetWriter('out.beton', {'image': field}).from_indexed_dataset(
    ...     [(EncodedImage(open('cat.jpg', 'rb').read(), 'cat.jpg'),)])   # doctest: +SKIP

    It writes the same field type as ``RGBImageField`` (``ImageField`` for other channel
    counts or PNG), so any reader reads the file. Arrays and PIL images are accepted too.
    """

    @property
    def type_id(self):
        return self.image_type_id()   # the built-in image types, not an application-defined one

    def __init__(self, write_mode='raw', max_resolution=None, smart_threshold=None,
                 jpeg_quality=90, compress_probability=0.5, *, min_resolution=None,
                 interpolation='area', channels=3, keep_jpeg=False):
        super().__init__(write_mode, max_resolution, smart_threshold, jpeg_quality,
                         compress_probability, min_resolution=min_resolution,
                         interpolation=interpolation, channels=channels)
        self.keep_jpeg = bool(keep_jpeg)

    @classmethod
    def like(cls, field, keep_jpeg=False):
        """A SourceImageField with the settings of ``field`` (an ``ImageField``)."""
        if isinstance(field, SourceImageField):
            return field
        new = cls.__new__(cls)
        new.__dict__.update(field.__dict__)
        new.keep_jpeg = bool(keep_jpeg)
        return new

    def settings(self):
        """The settings that decide what is stored, as a JSON-able dict."""
        return {'channels': self.channels, 'write_mode': self.write_mode,
                'max_resolution': self.max_resolution, 'min_resolution': self.min_resolution,
                'jpeg_quality': self.jpeg_quality, 'smart_threshold': self.smart_threshold,
                'compress_probability': self.compress_probability,
                'interpolation': int(self.interpolation), 'keep_jpeg': self.keep_jpeg}

    # -------------------------------------------------------------- preparing

    def prepare(self, value, sample_id=0):
        """Turn ``value`` into the bytes this field stores (a :class:`StoredImage`).

        This is the expensive part of encoding (decode, resize, compress); converters run
        it on all cores and the writer only copies the result. ``sample_id`` seeds
        ``write_mode='proportion'``. Raises :class:`BadSampleError` for an image file that
        cannot be read.
        """
        if isinstance(value, StoredImage):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = EncodedImage(value)
        if isinstance(value, EncodedImage):
            return self._prepare_file(value, sample_id)
        image = self._resize(self._as_image(value))
        return self._compress(image, sample_id)

    def _prepare_file(self, encoded, sample_id):
        data = encoded.data
        try:
            info = jpeg_info(data)
        except ValueError as e:
            raise BadSampleError(str(e), encoded.where) from None
        if info is not None and self.keep_jpeg and self.channels == 3 and info.components == 3 \
                and info.orientation in (None, 1) and max(info.width, info.height) <= MAX_SIDE:
            size = target_size(info.height, info.width, self.max_resolution, self.min_resolution)
            if size == (info.height, info.width) and \
                    self._mode_for(info.height, info.width, sample_id) == MODE_JPEG:
                return StoredImage(MODE_JPEG, info.height, info.width, np.frombuffer(data, np.uint8))
        try:
            image = decode_image(data, self.channels, check=False)  # jpeg_info checked it above
        except ValueError as e:
            raise BadSampleError(str(e), encoded.where) from None
        return self._compress(self._resize(image), sample_id)

    def _compress(self, image, sample_id):
        height, width = image.shape[:2]
        mode = self._mode_for(height, width, sample_id)
        return StoredImage(mode, height, width, self._stored_bytes(image, mode))

    # -------------------------------------------------------------- writing

    @property
    def metadata_type(self):
        return IMAGE_METADATA

    def encode(self, destination, value, malloc):
        if not isinstance(value, StoredImage):
            sample_id = current_sample_id()
            value = self.prepare(value, 0 if sample_id is None else sample_id)
        ptr, buffer = malloc(value.data.size)
        buffer[:] = value.data
        destination['mode'] = value.mode
        destination['height'] = value.height
        destination['width'] = value.width
        destination['data_ptr'] = ptr

    def __repr__(self):
        return (f"SourceImageField(write_mode={self.write_mode!r}, channels={self.channels}, "
                f"max_resolution={self.max_resolution}, min_resolution={self.min_resolution}, "
                f"keep_jpeg={self.keep_jpeg})")
