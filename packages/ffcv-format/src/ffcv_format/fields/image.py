"""Image fields: RGB (FFCV 1.0's type 2) and any channel count or PNG (type 7)."""
import cv2
import numpy as np

from ..spec import CUSTOM_TYPE_ID
from .base import Field, arguments_from_bytes, current_sample_id, empty_arguments, sample_uniform

IMAGE_METADATA = np.dtype([
    ('mode', '<u1'),
    ('width', '<u2'),
    ('height', '<u2'),
    ('data_ptr', '<u8'),
])

MODE_JPEG, MODE_RAW, MODE_PNG = 0, 1, 2
WRITE_MODES = ('raw', 'jpg', 'smart', 'proportion', 'png')
CHANNELS = (1, 3, 4)
MAX_SIDE = 0xFFFF

INTERPOLATIONS = {
    'area': cv2.INTER_AREA,
    'linear': cv2.INTER_LINEAR,
    'cubic': cv2.INTER_CUBIC,
    'lanczos': cv2.INTER_LANCZOS4,
    'nearest': cv2.INTER_NEAREST,
}

_TO_CV = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}
_FROM_CV = {3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGBA}
_IMREAD = {1: cv2.IMREAD_GRAYSCALE, 3: cv2.IMREAD_COLOR, 4: cv2.IMREAD_UNCHANGED}


def _positive_or_none(name, value):
    if value is not None and (not isinstance(value, (int, np.integer)) or value <= 0):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return None if value is None else int(value)


def target_size(height, width, max_resolution=None, min_resolution=None):
    """The (height, width) an image is stored at.

    The longer side is shrunk to `max_resolution` as FFCV 1.0 does (sizes truncated);
    then the shorter side is grown to `min_resolution`, unless that would make the
    longer side exceed `max_resolution` (max_resolution wins).
    """
    size = np.array([width, height])
    if max_resolution is not None:
        ratio = max_resolution / size.max()
        if ratio < 1:
            size = np.maximum((ratio * size).astype(int), 1)
    if min_resolution is not None and size.min() < min_resolution:
        ratio = min_resolution / size.min()
        grown = np.maximum(np.round(ratio * size).astype(int), min_resolution)
        if max_resolution is not None and grown.max() > max_resolution:
            ratio = max_resolution / size.max()
            grown = np.maximum(np.round(ratio * size).astype(int), 1)
        size = grown
    return int(size[1]), int(size[0])


def resize_image(image, max_resolution=None, min_resolution=None, interpolation=cv2.INTER_AREA):
    """``image`` (HxWxC) at the size :func:`target_size` gives (itself when that is its size)."""
    height, width = image.shape[:2]
    new_height, new_width = target_size(height, width, max_resolution, min_resolution)
    if (new_height, new_width) == (height, width):
        return image
    resized = cv2.resize(image, (new_width, new_height), interpolation=interpolation)
    return resized[:, :, None] if resized.ndim == 2 else resized


def encode_jpeg(image, quality):
    ok, data = cv2.imencode('.jpg', _to_cv(image), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV reports failures by exception in practice
        raise ValueError("OpenCV could not encode the image as JPEG")
    return data.reshape(-1)


def encode_png(image):
    ok, data = cv2.imencode('.png', _to_cv(image))
    if not ok:  # pragma: no cover
        raise ValueError("OpenCV could not encode the image as PNG")
    return data.reshape(-1)


def _to_cv(image):
    channels = image.shape[2]
    if channels == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, _TO_CV[channels])


#: PNG colour types (header byte 25) of 1, 3 and 4 channels (docs/format.md)
_PNG_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}
_JPEG_FRAME_MARKERS = frozenset([0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF])


def stored_channels(data):
    """The channels a stored image's own header declares: a PNG's colour type (gray 1, RGB 3,
    RGBA 4, others 0), a JPEG's number of components; None when ``data`` is neither."""
    if len(data) >= 26 and bytes(data[:8]) == b'\x89PNG\r\n\x1a\n':
        return {0: 1, 2: 3, 6: 4}.get(int(data[25]), 0)
    if len(data) < 4 or int(data[0]) != 0xFF or int(data[1]) != 0xD8:
        return None
    at = 2
    while at + 9 < len(data):          # walk the markers to the frame header
        if int(data[at]) != 0xFF:
            return None
        marker = int(data[at + 1])
        if marker in _JPEG_FRAME_MARKERS:
            return int(data[at + 9])
        at += 2 + (int(data[at + 2]) << 8 | int(data[at + 3]))
    return None


def check_stored_channels(data, channels):
    """Raise ValueError unless the stored JPEG or PNG ``data`` has ``channels`` channels (a
    damaged field descriptor would otherwise make OpenCV convert it silently)."""
    found = stored_channels(data)
    if found is not None and found != channels:
        kind = 'PNG' if bytes(data[:4]) == b'\x89PNG' else 'JPEG'
        raise ValueError(f"the stored {kind} has {found or 'an unexpected number of'} channel(s), the field "
                         f"has {channels}")


def decode_compressed(data, channels):
    """Decode JPEG or PNG bytes into an HxWxC RGB(A) uint8 array."""
    check_stored_channels(data, channels)
    image = cv2.imdecode(np.asarray(data, dtype=np.uint8), _IMREAD[channels])
    if image is None:
        raise ValueError("the stored image data does not decode")
    if image.ndim == 2:
        return image[:, :, None]
    if image.shape[2] != channels:
        raise ValueError(f"the stored image has {image.shape[2]} channels, expected {channels}")
    return cv2.cvtColor(image, _FROM_CV[channels])


class ImageField(Field):
    """An image per sample, with 1 (grayscale), 3 (RGB) or 4 (RGBA) channels.

    Values are HxW or HxWxC uint8 arrays (or PIL images), channels in RGB(A) order.

    write_mode:
      - ``'raw'``: pixels as they are (fastest to decode, largest).
      - ``'jpg'``: JPEG at ``jpeg_quality`` (1 or 3 channels).
      - ``'smart'``: JPEG for images whose raw size exceeds ``smart_threshold`` bytes,
        raw otherwise (all raw when ``smart_threshold`` is None).
      - ``'proportion'``: JPEG with probability ``compress_probability``, raw otherwise;
        the draw depends only on the sample index, so a file is the same whatever the
        number of writer workers.
      - ``'png'``: lossless PNG (not readable by FFCV 1.0).

    ``max_resolution`` shrinks images whose longer side is larger; ``min_resolution``
    grows images whose shorter side is smaller; ``interpolation`` is one of ``'area'``
    (FFCV 1.0's, the default), ``'linear'``, ``'cubic'``, ``'lanczos'``, ``'nearest'``.

    A field with 3 channels that stores no PNG is written as FFCV 1.0's ``RGBImageField``
    (type 2); anything else uses type 7, which FFCV 1.0 refuses instead of misreading.
    """

    TYPE_ID = 7
    pointer_names = ('data_ptr',)

    def __init__(self, write_mode='raw', max_resolution=None, smart_threshold=None,
                 jpeg_quality=90, compress_probability=0.5, *, min_resolution=None,
                 interpolation='area', channels=3):
        if write_mode not in WRITE_MODES:
            raise ValueError(f"write_mode must be one of {WRITE_MODES}, got {write_mode!r}")
        if channels not in CHANNELS:
            raise ValueError(f"channels must be one of {CHANNELS}, got {channels!r}")
        if write_mode in ('jpg', 'smart', 'proportion') and channels == 4:
            raise ValueError(f"write_mode={write_mode!r} stores JPEG, which has no alpha channel; "
                             "use write_mode='png' or 'raw' for 4 channels")
        if (isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, (int, float, np.integer, np.floating))
                or not 1 <= int(jpeg_quality) <= 100):
            raise ValueError(f"jpeg_quality must be a number from 1 to 100, got {jpeg_quality!r}")
        if compress_probability is None and write_mode == 'proportion':
            raise ValueError("write_mode='proportion' needs compress_probability (the share of images "
                             "stored as JPEG), got None")
        if compress_probability is not None and not 0 <= compress_probability <= 1:
            raise ValueError(f"compress_probability must be in [0, 1], got {compress_probability!r}")
        self.max_resolution = _positive_or_none('max_resolution', max_resolution)
        self.min_resolution = _positive_or_none('min_resolution', min_resolution)
        if (self.max_resolution is not None and self.min_resolution is not None
                and self.min_resolution > self.max_resolution):
            raise ValueError(f"min_resolution ({min_resolution}) is larger than "
                             f"max_resolution ({max_resolution})")
        if smart_threshold is not None and smart_threshold < 0:
            raise ValueError(f"smart_threshold must be >= 0 or None, got {smart_threshold!r}")
        if isinstance(interpolation, str):
            if interpolation not in INTERPOLATIONS:
                raise ValueError(f"interpolation must be one of {tuple(INTERPOLATIONS)}, "
                                 f"got {interpolation!r}")
            interpolation = INTERPOLATIONS[interpolation]
        elif interpolation not in INTERPOLATIONS.values():
            raise ValueError(f"interpolation must be one of {tuple(INTERPOLATIONS)}, "
                             f"got {interpolation!r}")
        self.write_mode = write_mode
        self.smart_threshold = smart_threshold
        self.jpeg_quality = int(jpeg_quality)   # as FFCV 1.0: 90.7 -> 90
        self.compress_probability = None if compress_probability is None else float(compress_probability)
        self.interpolation = interpolation
        self.channels = channels

    @property
    def type_id(self):
        if not self.declares_type_id():
            return CUSTOM_TYPE_ID   # a subclass: application-defined, as in FFCV 1.0
        return self.image_type_id()

    def image_type_id(self):
        """The image type this field's settings need: FFCV 1.0's RGB type (2) for 3 channels
        without PNG, type 7 otherwise."""
        if self.channels == 3 and self.write_mode != 'png':
            return RGBImageField.TYPE_ID
        return ImageField.TYPE_ID

    @property
    def metadata_type(self):
        return IMAGE_METADATA

    def to_binary(self):
        if self.type_id == RGBImageField.TYPE_ID:
            return empty_arguments()
        return arguments_from_bytes(bytes([self.channels]))

    @staticmethod
    def from_binary(binary):
        channels = int(np.asarray(binary).view(np.uint8).reshape(-1)[0])
        if channels not in CHANNELS:
            raise ValueError(f"image field with {channels} channels")
        return ImageField(channels=channels, write_mode='png' if channels == 3 else 'raw')

    def _as_image(self, image):
        if not isinstance(image, np.ndarray):
            mode = getattr(image, 'mode', None)
            if mode is not None and hasattr(image, 'convert') and mode not in ('L', 'RGB', 'RGBA'):
                image = image.convert({1: 'L', 3: 'RGB', 4: 'RGBA'}[self.channels])
            if not hasattr(image, '__array_interface__') and not hasattr(image, '__array__'):
                raise TypeError(f"expected an image as a HxWxC uint8 array, got {type(image).__name__}")
            image = np.asarray(image)
        if image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got dtype {image.dtype} (shape {image.shape})")
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"expected an image of shape HxW or HxWxC, got shape {image.shape}")
        channels = image.shape[2]
        if channels != self.channels:
            if channels == 1 and self.channels == 3:
                image = np.repeat(image, 3, axis=2)  # grayscale into an RGB field
            else:
                raise ValueError(
                    f"expected an image with {self.channels} channel(s), got shape {image.shape}"
                    + ("; use ImageField(channels=...) for other channel counts"
                       if self.channels == 3 else ""))
        return image

    def _resize(self, image):
        image = resize_image(image, self.max_resolution, self.min_resolution, self.interpolation)
        if max(image.shape[:2]) > MAX_SIDE:
            raise ValueError(f"image of shape {image.shape} is too large: the format stores at most "
                             f"{MAX_SIDE} pixels per side; set max_resolution")
        return image

    def _choose_mode(self, image):
        sample_id = current_sample_id()
        return self._mode_for(image.shape[0], image.shape[1],
                              sample_id if sample_id is not None else id(image))

    def _mode_for(self, height, width, sample_id):
        """The storage mode of an image of this size; ``proportion`` draws from ``sample_id``."""
        if self.write_mode == 'raw':
            return MODE_RAW
        if self.write_mode == 'jpg':
            return MODE_JPEG
        if self.write_mode == 'png':
            return MODE_PNG
        if self.write_mode == 'smart':
            if self.smart_threshold is not None and height * width * self.channels > self.smart_threshold:
                return MODE_JPEG
            return MODE_RAW
        return MODE_JPEG if sample_uniform(sample_id) < self.compress_probability else MODE_RAW

    def _stored_bytes(self, image, mode):
        """What is stored for ``image`` in ``mode``: its raw pixels, or its JPEG or PNG encoding."""
        if mode == MODE_RAW:
            return np.ascontiguousarray(image).reshape(-1)
        if mode == MODE_JPEG:
            return encode_jpeg(image, self.jpeg_quality)
        return encode_png(image)

    def encode(self, destination, image, malloc):
        image = self._resize(self._as_image(image))
        mode = self._choose_mode(image)
        data = self._stored_bytes(image, mode)
        ptr, buffer = malloc(data.size)
        buffer[:] = data
        destination['mode'] = mode
        destination['height'], destination['width'] = image.shape[:2]
        destination['data_ptr'] = ptr

    def expected_sizes(self, metadata):
        raw = np.asarray(metadata['mode']) == MODE_RAW
        pixels = (np.asarray(metadata['height'], dtype=np.int64) * np.asarray(metadata['width'], dtype=np.int64)
                  * self.channels)
        return [np.where(raw, pixels, -1)]

    def decode(self, metadata, storage):
        mode, height, width = int(metadata['mode']), int(metadata['height']), int(metadata['width'])
        ptr = int(metadata['data_ptr'])
        if mode == MODE_RAW:
            data = storage.read(ptr, height * width * self.channels)
            return data.reshape(height, width, self.channels).copy()
        if mode == MODE_JPEG or (mode == MODE_PNG and self.TYPE_ID != RGBImageField.TYPE_ID):
            image = decode_compressed(storage.read(ptr, storage.allocation_size(ptr)), self.channels)
            if image.shape[:2] != (height, width):
                raise ValueError(f"the stored image is {image.shape[1]}x{image.shape[0]}, "
                                 f"metadata says {width}x{height}")
            return image
        raise ValueError(f"unknown image mode {mode}")

    def __repr__(self):
        return (f"{type(self).__name__}(write_mode={self.write_mode!r}, channels={self.channels}, "
                f"max_resolution={self.max_resolution}, min_resolution={self.min_resolution})")


class RGBImageField(ImageField):
    """An RGB image per sample, FFCV 1.0's field (see :class:`ImageField` for options).

    >>> RGBImageField(write_mode='jpg', max_resolution=256, jpeg_quality=90)
    RGBImageField(write_mode='jpg', channels=3, max_resolution=256, min_resolution=None)
    """

    TYPE_ID = 2

    def __init__(self, write_mode='raw', max_resolution=None, smart_threshold=None,
                 jpeg_quality=90, compress_probability=0.5, *, min_resolution=None,
                 interpolation='area', channels=3):
        super().__init__(write_mode, max_resolution, smart_threshold, jpeg_quality,
                         compress_probability, min_resolution=min_resolution,
                         interpolation=interpolation, channels=channels)

    @staticmethod
    def from_binary(binary):
        return RGBImageField()
