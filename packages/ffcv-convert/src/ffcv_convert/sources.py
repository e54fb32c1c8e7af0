"""Sources: where samples come from, item by item.

Two shapes, which the converter splits into parts differently (see ``convert``):

- an :class:`IndexedSource` knows how many items it has and reads item ``i`` on demand,
  from any thread (image folders, manifests, map-style datasets): reads run many at once;
- a :class:`StreamSource` yields its items in order, stream after stream (WebDataset
  shards, each read sequentially, several shards at once; Python iterables).

Each item becomes a *record*: a dict from keys to values (``{'image': EncodedImage,
'label': 3, ...}``), or a tuple with one value per field for Python datasets.
"""
import csv
import hashlib
import io
import json
import os
import posixpath
import queue
import re
import tarfile
import threading

from .errors import BadSampleError
from .images import IMAGE_EXTENSIONS, EncodedImage

__all__ = ['Source', 'IndexedSource', 'StreamSource', 'ImageFolder', 'Manifest', 'WebDataset',
           'IndexedDataset', 'IterableSource', 'open_source', 'expand_braces', 'source_kind']


# --------------------------------------------------------------------------- fsspec helpers

#: connections s3fs may open at once (botocore's max_pool_connections), unless given
S3_CONNECTIONS = 128


def url_to_fs(url, storage_options=None):
    """(filesystem, path) for a local path or an fsspec URL; a clear error for a missing extra."""
    import fsspec
    url = os.fspath(url)
    options = dict(storage_options or {})
    if fsspec.core.split_protocol(url)[0] in ('s3', 's3a'):
        # botocore allows 10 connections by default: too few to keep many reads in flight
        config = dict(options.get('config_kwargs') or {})
        config.setdefault('max_pool_connections', S3_CONNECTIONS)
        options['config_kwargs'] = config
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError as e:
        protocol = str(url).split('://', 1)[0]
        extra = {'s3': 's3', 'http': 'http', 'https': 'http', 'gs': 'gcs', 'gcs': 'gcs'}.get(protocol)
        hint = f"pip install 'ffcv-convert[{extra}]'" if extra else "install the fsspec backend for it"
        raise ImportError(f"reading {url!r} needs a package that is not installed ({e}); {hint}") from None


def _is_local(fs):
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ('file', 'local')


def display_name(fs, path):
    """How a file is named in messages: a plain path for local files, a URL otherwise."""
    return path if _is_local(fs) else fs.unstrip_protocol(path)


def read_file(fs, path, where):
    """The bytes of ``path``; BadSampleError for a missing or unreadable file."""
    try:
        if _is_local(fs):  # plain reads: fsspec's local file objects cost more than the read
            with open(path, 'rb') as f:
                return f.read()
        return fs.cat_file(path)
    except FileNotFoundError:
        raise BadSampleError("file not found", where) from None
    except (PermissionError, IsADirectoryError, NotADirectoryError) as e:
        raise BadSampleError(f"cannot be read ({type(e).__name__}: {e.strerror or e})", where) from None


def _cannot_list(error):
    """Why a folder could not be listed, in a few words."""
    text = getattr(error, 'strerror', None) or str(error) or type(error).__name__
    return f"folder cannot be listed ({type(error).__name__}: {' '.join(str(text).split())[:200]})"


def _not_a_folder(path):
    """What the local entry ``path``, which is neither a file nor a folder, is."""
    import stat
    try:
        if os.path.islink(path) and not os.path.exists(path):
            return f"is a broken symbolic link (to {os.readlink(path)!r}), not a folder"
        mode = os.stat(path).st_mode
    except OSError as e:
        return _cannot_list(e)
    kinds = [(stat.S_ISFIFO, 'a FIFO'), (stat.S_ISSOCK, 'a socket'), (stat.S_ISCHR, 'a character device'),
             (stat.S_ISBLK, 'a block device')]
    what = next((name for test, name in kinds if test(mode)), 'not a regular file')
    return f"is {what}, not a folder"


def _sha256(lines):
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode('utf-8', 'surrogateescape'))
        digest.update(b'\n')
    return digest.hexdigest()


# --------------------------------------------------------------------------- base classes

class Source:
    """Base class of sources. ``default_fields()`` gives ``NAME=KEY:TYPE`` specs."""

    #: True when records are tuples (one value per field) rather than dicts
    tuple_records = False
    #: True when reads are remote, so many should be in flight at once
    remote = False

    def default_fields(self):
        raise NotImplementedError

    def record_keys(self):
        """The keys every record has (None when records differ or are tuples)."""
        return None

    def describe(self):
        """A JSON-able description that changes when the source's content list changes."""
        raise NotImplementedError

    def unreadable_folders(self):
        """``(where, reason)`` of each folder of the source that could not be listed: its
        samples are unknown. :func:`~ffcv_convert.convert` stops on them, or with
        ``on_error='skip'`` lists them in the skipped report."""
        return []


class IndexedSource(Source):
    """A source of known length whose item ``i`` can be read from any thread."""

    def __len__(self):
        raise NotImplementedError

    def where(self, index):
        """How item ``index`` is named in messages (a path or URL)."""
        return f"item {index}"

    def read(self, index):
        """The record of item ``index`` (may block on I/O; called from many threads)."""
        raise NotImplementedError


class StreamSource(Source):
    """A source read in order, stream by stream (``num_streams`` None: one unbounded stream)."""

    num_streams = None

    def stream(self, index):
        """Iterator of ``(where, record)`` for stream ``index``."""
        raise NotImplementedError


# --------------------------------------------------------------------------- image folder

class ImageFolder(IndexedSource):
    """An image folder tree ``root/<class>/<file>``, local or on any fsspec filesystem.

    >>> source = ImageFolder('s3://bucket/imagenet/train', storage_options={'anon': True})  # doctest: +SKIP
    >>> len(source), source.classes[:2]                                   # doctest: +SKIP
    (1281167, ['n01440764', 'n01443537'])

    Classes are the sorted names of the folders directly under ``root``, labelled 0, 1, ...
    (as torchvision's ``ImageFolder``); images are the files below each class folder
    (any depth) whose extension is one of ``extensions``, in sorted order. Hidden files
    and folders (``.name``) and files directly under ``root`` are ignored. Records hold
    ``image`` (the file, an :class:`EncodedImage`), ``label``, ``class`` (the folder name)
    and ``path`` (relative to ``root``).

    A folder that cannot be listed (permissions, a failing remote listing, a class entry
    that is a broken symbolic link, a FIFO or another non-folder) is not left out silently:
    it is in :meth:`unreadable_folders`, and its class keeps its place in the label
    numbering, so no other class is renumbered. Every folder under ``root`` is a class, as
    in torchvision's ``ImageFolder`` (so labels match its ``class_to_idx``), one with no
    images too (it has a label and no samples). Files directly under ``root`` (regular
    files, or symbolic links to them) are not classes.
    """

    #: remote class folders listed at once
    LISTING_THREADS = 16

    def __init__(self, root, storage_options=None, extensions=IMAGE_EXTENSIONS):
        self.url = os.fspath(root)
        self.fs, self.root = url_to_fs(self.url, storage_options)
        self.remote = not _is_local(self.fs)
        self.extensions = tuple(e.lower() for e in extensions)
        self._listed = None

    def _wanted(self, name):
        return not name.startswith('.') and name.lower().endswith(self.extensions)

    def _list_local(self, root):
        """``(found, unreadable, classes)``: ``(class, relative, path)`` of each image,
        ``(path, problem, class)`` of each folder that could not be listed, and the names of
        the class folders."""
        found, unreadable, classes = [], [], []
        try:
            with os.scandir(root) as listing:
                top = sorted(listing, key=lambda entry: entry.name)
        except OSError as e:
            raise OSError(e.errno, f"image folder {self.url!r} cannot be listed ({type(e).__name__}: "
                                   f"{e.strerror or e})") from None
        for entry in top:
            name = entry.name
            if name.startswith('.'):
                continue
            path = f"{root}/{name}"
            try:
                if entry.is_file():  # follows symbolic links: a file under root is no class
                    continue
                if not entry.is_dir():
                    unreadable.append((path, _not_a_folder(path), name))
                    continue
            except OSError as e:  # e.g. a symbolic link loop
                unreadable.append((path, _cannot_list(e), name))
                continue

            def failed(error, name=name, path=path):
                where = error.filename if isinstance(getattr(error, 'filename', None), str) else path
                unreadable.append((where.replace(os.sep, '/'), _cannot_list(error), name))

            classes.append(name)
            # os.walk: fsspec's find would stat every file
            for directory, folders, names in os.walk(path, onerror=failed, followlinks=True):
                folders[:] = [f for f in folders if not f.startswith('.')]
                directory = directory.replace(os.sep, '/')
                relative = directory[len(root) + 1:]
                found += [(name, f"{relative}/{n}", f"{directory}/{n}") for n in names if self._wanted(n)]
        return found, unreadable, classes

    def _list_remote_class(self, root, name, path):
        """``(found, unreadable)`` of one class folder on a remote filesystem, folder by
        folder, so that a listing that fails is seen (fsspec's find leaves it out)."""
        found, unreadable = [], []
        pending, seen = [path], set()
        while pending:
            directory = pending.pop()
            key = directory.rstrip('/')
            if key in seen:
                continue
            seen.add(key)
            try:
                listing = self.fs.ls(directory, detail=True)
            except Exception as e:  # noqa: BLE001 - any failing listing (OSError, HTTP errors...)
                unreadable.append((key, _cannot_list(e), name))
                continue
            for info in listing:
                child = info['name'].rstrip('/')
                base = child.rsplit('/', 1)[-1]
                if child == key or not child.startswith(key + '/') or base.startswith('.'):
                    continue
                if info.get('type') == 'directory':
                    pending.append(info['name'])
                elif self._wanted(base):
                    found.append((name, child[len(root) + 1:], child))
        return found, unreadable

    def _list_remote(self, root):
        found, unreadable, folders = [], [], []
        for info in sorted(self.fs.ls(root, detail=True), key=lambda info: info['name']):
            path = info['name'].rstrip('/')
            name = path.rsplit('/', 1)[-1]
            if path == root or not path.startswith(root + '/') or name.startswith('.'):
                continue
            kind = info.get('type')
            if kind == 'directory':
                folders.append((name, info['name']))
            elif kind != 'file':
                unreadable.append((path, f"is {kind or 'of no known type'}, not a folder", name))
        if folders:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(min(self.LISTING_THREADS, len(folders)),
                                    thread_name_prefix='ffcv-list') as pool:
                for more, bad in pool.map(lambda folder: self._list_remote_class(root, *folder), folders):
                    found += more
                    unreadable += bad
        return found, unreadable, [name for name, _ in folders]

    def _list(self):
        if self._listed is not None:
            return self._listed
        root = self.root.rstrip('/')
        if not self.fs.isdir(root):
            what = "is a file, not a folder" if self.fs.exists(root) else "does not exist"
            raise FileNotFoundError(f"image folder {self.url!r} {what}")
        entries, unreadable, folders = (self._list_local if _is_local(self.fs) else self._list_remote)(root)
        entries.sort()
        unreadable.sort()
        # every class folder has a label, an empty or unreadable one too: the other classes
        # are never renumbered
        classes = sorted(set(folders) | {c for c, _, _ in entries} | {c for _, _, c in unreadable})
        label = {c: i for i, c in enumerate(classes)}
        bad = [(display_name(self.fs, path), f"{problem} (class {c!r}, label {label[c]})")
               for path, problem, c in unreadable]
        if not entries:
            also = ""
            if bad:
                also = (f"; {len(bad)} folder(s) could not be read: "
                        + '; '.join(f"{where}: {reason}" for where, reason in bad[:3]))
            raise FileNotFoundError(
                f"image folder {self.url!r} has no images in class folders (expected "
                f"ROOT/<class>/<image> with extensions {', '.join(self.extensions)}){also}")
        self._listed = (classes, [(label[c], c, rel, path) for c, rel, path in entries], bad)
        return self._listed

    def unreadable_folders(self):
        """``(where, reason)`` of each folder that could not be listed (the reason names its
        class and label, which the class keeps)."""
        return list(self._list()[2])

    @property
    def classes(self):
        """The class names, in label order."""
        return self._list()[0]

    def __len__(self):
        return len(self._list()[1])

    def where(self, index):
        return display_name(self.fs, self._list()[1][index][3])

    def read(self, index):
        label, class_name, relative, path = self._list()[1][index]
        where = display_name(self.fs, path)
        return {'image': EncodedImage(read_file(self.fs, path, where), where), 'label': label,
                'class': class_name, 'path': relative}

    def default_fields(self):
        return ['image=image:image', 'label=label:int']

    def record_keys(self):
        return ['image', 'label', 'class', 'path']

    def describe(self):
        classes, items, unreadable = self._list()
        described = {'kind': 'image-folder', 'url': self.url, 'items': len(items), 'classes': len(classes),
                     'listing_sha256': _sha256(f"{label}\t{rel}" for label, _, rel, _ in items)}
        if unreadable:  # absent otherwise: descriptions of earlier conversions stay valid
            described['unreadable_folders'] = [where for where, _ in unreadable]
        return described

    def __repr__(self):
        return f"ImageFolder({self.url!r})"


# --------------------------------------------------------------------------- manifest

class Manifest(IndexedSource):
    """A CSV or Parquet table with a column of image paths and columns of labels/metadata.

    >>> source = Manifest('data/train.csv', path_column='file')     # doctest: +SKIP

    Paths are relative to the manifest's folder (or absolute, or URLs); the manifest
    may itself be on any fsspec filesystem. Records hold every column (CSV values as
    text, converted by each field's type) and ``image``: the file at the path (an
    :class:`EncodedImage`). Default fields: ``image`` and, if the table has a
    ``label`` column, ``label`` (an integer).
    """

    def __init__(self, url, path_column='path', storage_options=None, file_format=None):
        self.url = os.fspath(url)
        self.storage_options = dict(storage_options or {})
        self.fs, self.path = url_to_fs(self.url, self.storage_options)
        self.remote = not _is_local(self.fs)
        self.path_column = path_column
        if file_format is None:
            lowered = self.url.lower()
            file_format = 'parquet' if lowered.endswith(('.parquet', '.pq')) else 'csv'
        if file_format not in ('csv', 'parquet'):
            raise ValueError(f"manifest format must be 'csv' or 'parquet', got {file_format!r}")
        self.file_format = file_format
        self.base = posixpath.dirname(self.path)
        self._rows = None
        self._filesystems = {}

    def _load(self):
        if self._rows is not None:
            return self._rows
        if not self.fs.exists(self.path):
            raise FileNotFoundError(f"manifest {self.url!r} does not exist")
        if self.file_format == 'csv':
            with self.fs.open(self.path, 'rb') as f:
                text = io.TextIOWrapper(f, encoding='utf-8-sig', newline='')
                sample = text.read(4096)
                text.seek(0)
                delimiter = '\t' if self.url.lower().endswith('.tsv') or \
                    ('\t' in sample and ',' not in sample) else ','
                reader = csv.DictReader(text, delimiter=delimiter)
                columns = list(reader.fieldnames or [])
                rows = [dict(row) for row in reader]
        else:
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise ImportError(f"reading the Parquet manifest {self.url!r} needs pyarrow; "
                                  "pip install 'ffcv-convert[parquet]'") from None
            with self.fs.open(self.path, 'rb') as f:
                table = pq.read_table(f)
            columns = table.column_names
            rows = table.to_pylist()
        if self.path_column not in columns:
            raise ValueError(f"manifest {self.url!r} has no column {self.path_column!r} (its columns: "
                             f"{', '.join(columns)}); name the image path column with path_column= "
                             "(--path-column)")
        self.columns = columns
        self._rows = rows
        return rows

    def _locate(self, value):
        value = str(value)
        if '://' in value:
            protocol = value.split('://', 1)[0]
            if protocol not in self._filesystems:
                self._filesystems[protocol] = url_to_fs(value, self.storage_options)[0]
            fs = self._filesystems[protocol]
            return fs, fs._strip_protocol(value)
        if _is_local(self.fs):
            return self.fs, os.path.join(self.base, value)
        return self.fs, posixpath.join(self.base, value)

    def __len__(self):
        return len(self._load())

    def where(self, index):
        fs, path = self._locate(self._load()[index][self.path_column])
        return display_name(fs, path)

    def read(self, index):
        row = self._load()[index]
        fs, path = self._locate(row[self.path_column])
        where = display_name(fs, path)
        record = dict(row)
        record['image'] = EncodedImage(read_file(fs, path, where), where)
        return record

    def record_keys(self):
        self._load()
        return list(dict.fromkeys(self.columns + ['image']))

    def default_fields(self):
        self._load()
        specs = ['image=image:image']
        if 'label' in self.columns:
            specs.append('label=label:int')
        return specs

    def describe(self):
        rows = self._load()
        return {'kind': 'manifest', 'url': self.url, 'path_column': self.path_column, 'items': len(rows),
                'rows_sha256': _sha256(json.dumps(row, sort_keys=True, default=str) for row in rows)}

    def __repr__(self):
        return f"Manifest({self.url!r}, path_column={self.path_column!r})"


# --------------------------------------------------------------------------- WebDataset

_BRACES = re.compile(r'\{([^{}]*)\}')


def expand_braces(pattern):
    """Expand shell-style braces: ``{000..003}`` ranges (zero padding kept) and ``{a,b}`` lists.

    >>> expand_braces('shard-{000..002}.tar')
    ['shard-000.tar', 'shard-001.tar', 'shard-002.tar']
    >>> expand_braces('{train,val}-{0..1}.tar')
    ['train-0.tar', 'train-1.tar', 'val-0.tar', 'val-1.tar']
    """
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    body = match.group(1)
    head, tail = pattern[:match.start()], pattern[match.end():]
    numeric = re.fullmatch(r'(-?\d+)\.\.(-?\d+)(?:\.\.(\d+))?', body)
    if numeric:
        first, last = numeric.group(1), numeric.group(2)
        step = int(numeric.group(3) or 1)
        width = len(first) if first.startswith('0') and len(first) > 1 else 0
        lo, hi = int(first), int(last)
        values = range(lo, hi + 1, step) if lo <= hi else range(lo, hi - 1, -step)
        choices = [str(v).zfill(width) for v in values]
    elif ',' in body:
        choices = body.split(',')
    else:
        raise ValueError(f"cannot expand {{{body}}} in {pattern!r}; use {{000..099}} or {{a,b}}")
    return [result for choice in choices for result in expand_braces(head + choice + tail)]


def _split_key(name):
    """WebDataset's rule: the key is the path up to the first dot of the file name."""
    directory, _, base = name.rpartition('/')
    if '.' not in base:
        return None, None
    stem, extension = base.split('.', 1)
    return (directory + '/' + stem if directory else stem), extension.lower()


class WebDataset(StreamSource):
    """WebDataset tar shards: local paths, brace patterns or fsspec URLs.

    >>> source = WebDataset('s3://bucket/train/shard-{000000..000146}.tar')   # doctest: +SKIP

    Files in a shard are grouped into samples by key (the path up to the first dot of
    the file name); each extension is a record key (``jpg``, ``cls``, ``json``...) and
    ``__key__`` is the key itself. Choose the fields with specs such as
    ``image=jpg:image,label=cls:int``; by default the first image extension found in the
    first sample becomes ``image`` and ``cls`` (if present) ``label``. Several shards are
    read at once (``readahead``), each from start to end.
    """

    def __init__(self, urls, storage_options=None, readahead=4):
        if isinstance(urls, (str, os.PathLike)):
            urls = [os.fspath(urls)]
        self.patterns = [os.fspath(u) for u in urls]
        self.urls = [url for pattern in self.patterns for url in expand_braces(pattern)]
        if not self.urls:
            raise ValueError("WebDataset needs at least one shard")
        self.storage_options = dict(storage_options or {})
        self.fs = url_to_fs(self.urls[0], self.storage_options)[0]
        self.remote = not _is_local(self.fs)
        self.readahead = max(1, int(readahead))
        self.num_streams = len(self.urls)
        self._prefetch = {}
        self._lock = threading.Lock()

    def _open(self, url):
        fs, path = url_to_fs(url, self.storage_options)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        # read shards front to back: a streaming file over HTTP (no range requests needed)
        block_size = 0 if protocol in ('http', 'https') else 1 << 22
        try:
            return fs.open(path, 'rb', block_size=block_size)
        except FileNotFoundError:
            raise FileNotFoundError(f"WebDataset shard {url!r} does not exist") from None

    def _records(self, url):
        with self._open(url) as f:
            try:
                archive = tarfile.open(fileobj=f, mode='r|*')
            except tarfile.TarError as e:
                raise ValueError(f"WebDataset shard {url!r} is not a tar file: {e}") from None
            current_key, record = None, None
            try:
                for member in archive:
                    if not member.isfile():
                        continue
                    key, extension = _split_key(member.name)
                    if key is None or key.rsplit('/', 1)[-1].startswith('__'):
                        continue
                    data = archive.extractfile(member).read()
                    if key != current_key:
                        if record is not None:
                            yield f"{url}:{current_key}", record
                        current_key, record = key, {'__key__': key}
                    record[extension] = data
            except tarfile.TarError as e:
                raise ValueError(f"WebDataset shard {url!r} is damaged after key {current_key!r}: "
                                 f"{e}") from None
            if record is not None:
                yield f"{url}:{current_key}", record

    def _start(self, index):
        """Read shard ``index`` on a background thread into a bounded queue."""
        items = queue.Queue(maxsize=256)
        stop = threading.Event()

        def run():
            try:
                for item in self._records(self.urls[index]):
                    while not stop.is_set():
                        try:
                            items.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            pass
                    if stop.is_set():
                        return
                items.put(StopIteration)
            except BaseException as e:  # handed to the reader of this shard
                items.put(e)

        thread = threading.Thread(target=run, name=f'ffcv-shard-{index}', daemon=True)
        thread.start()
        return items, stop

    def stream(self, index, upcoming=()):
        """Records of shard ``index``; ``upcoming`` shards are started in the background."""
        with self._lock:
            for k in [index, *list(upcoming)[:self.readahead - 1]]:
                if k not in self._prefetch:
                    self._prefetch[k] = self._start(k)
            items, stop = self._prefetch[index]
        try:
            while True:
                item = items.get()
                if item is StopIteration:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            with self._lock:
                self._prefetch.pop(index, None)

    def close(self):
        with self._lock:
            for _, stop in self._prefetch.values():
                stop.set()
            self._prefetch.clear()

    def __getstate__(self):
        # pickled without the shards being read (the Ray engine sends sources to its tasks)
        state = dict(self.__dict__)
        state['_prefetch'], state['_lock'] = {}, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def default_fields(self):
        for _, record in self._records(self.urls[0]):
            keys = [k for k in record if k != '__key__']
            images = [k for k in keys if k.rsplit('.', 1)[-1] in
                      ('jpg', 'jpeg', 'png', 'webp', 'ppm', 'bmp', 'tif', 'tiff', 'pgm')]
            if not images:
                raise ValueError(f"the first sample of {self.urls[0]!r} has no image (its keys: "
                                 f"{', '.join(keys)}); choose fields with --fields NAME=KEY:TYPE")
            specs = [f'image={images[0]}:image']
            for label in ('cls', 'cls.txt', 'label', 'label.txt'):
                if label in keys:
                    specs.append(f'label={label}:int')
                    break
            return specs
        raise ValueError(f"WebDataset shard {self.urls[0]!r} holds no samples")

    def describe(self):
        return {'kind': 'webdataset', 'shards': self.urls}

    def __repr__(self):
        return f"WebDataset({self.patterns!r}: {len(self.urls)} shards)"


# --------------------------------------------------------------------------- Python objects

class IndexedDataset(IndexedSource):
    """A map-style dataset (``__len__`` and ``__getitem__``, e.g. a PyTorch ``Dataset``).

    >>> source = IndexedDataset(torchvision.datasets.CIFAR10('data', download=True),
    ...                         to_fields=lambda item: (np.asarray(item[0]), item[1]))  # doctest: +SKIP

    ``to_fields(item)`` maps an item to a tuple with one value per field (default: the
    item itself). Items are read from several threads at once.
    """

    tuple_records = True

    def __init__(self, dataset, to_fields=None):
        self.dataset = dataset
        self.to_fields = to_fields

    def __len__(self):
        return len(self.dataset)

    def read(self, index):
        item = self.dataset[index]
        return self.to_fields(item) if self.to_fields is not None else item

    def describe(self):
        return {'kind': 'dataset', 'type': type(self.dataset).__qualname__, 'items': len(self.dataset)}

    def __repr__(self):
        return f"IndexedDataset({type(self.dataset).__qualname__}, {len(self.dataset)} items)"


class IterableSource(StreamSource):
    """An iterable of samples of unknown length, read in order.

    >>> source = IterableSource(lambda: my_generator(), to_fields=None)      # doctest: +SKIP

    Pass a function returning a fresh iterator to be able to resume an interrupted
    conversion (it restarts the iteration and skips what was already written; the
    iteration must give the same items in the same order). ``to_fields(item)`` maps an
    item to a tuple with one value per field.
    """

    tuple_records = True

    def __init__(self, iterable, to_fields=None):
        self.iterable = iterable
        self.to_fields = to_fields

    def items(self):
        iterable = self.iterable() if callable(self.iterable) else self.iterable
        for position, item in enumerate(iterable):
            yield f"item {position}", (self.to_fields(item) if self.to_fields is not None else item)

    def describe(self):
        return {'kind': 'iterable', 'type': type(self.iterable).__qualname__}

    def __repr__(self):
        return f"IterableSource({type(self.iterable).__qualname__})"


# --------------------------------------------------------------------------- choosing

SOURCE_KINDS = ('folder', 'manifest', 'webdataset')


def source_kind(url):
    """The kind of source a path or URL names: ``'webdataset'`` for tar shards and brace
    patterns, ``'manifest'`` for .csv/.tsv/.parquet files, ``'folder'`` otherwise."""
    lowered = str(url).lower().rstrip('/')
    if _BRACES.search(lowered) or lowered.endswith(('.tar', '.tar.gz', '.tgz')):
        return 'webdataset'
    if lowered.endswith(('.csv', '.tsv', '.parquet', '.pq')):
        return 'manifest'
    return 'folder'


def open_source(src, kind=None, storage_options=None, path_column='path', to_fields=None):
    """A :class:`Source` for ``src``: a Source, a path or URL, a map-style dataset or an iterable.

    >>> open_source('data/train')                      # doctest: +SKIP
    ImageFolder('data/train')
    >>> open_source('shards/train-{000..009}.tar')      # doctest: +SKIP
    WebDataset(['shards/train-{000..009}.tar']: 10 shards)

    ``kind`` forces one of ``'folder'``, ``'manifest'``, ``'webdataset'`` for a path.
    """
    if isinstance(src, Source):
        return src
    if isinstance(src, (str, os.PathLike)):
        kind = kind or source_kind(src)
        if kind == 'folder':
            return ImageFolder(src, storage_options)
        if kind == 'manifest':
            return Manifest(src, path_column=path_column, storage_options=storage_options)
        if kind == 'webdataset':
            return WebDataset(src, storage_options)
        raise ValueError(f"unknown source kind {kind!r}; use one of {', '.join(SOURCE_KINDS)}")
    if isinstance(src, (list, tuple)) and src and all(isinstance(s, (str, os.PathLike)) for s in src):
        return WebDataset(src, storage_options)
    if hasattr(src, '__len__') and hasattr(src, '__getitem__'):
        return IndexedDataset(src, to_fields)
    if hasattr(src, '__iter__') or callable(src):
        return IterableSource(src, to_fields)
    raise TypeError(f"cannot convert from a {type(src).__name__}: pass a folder, manifest or shard "
                    "path/URL, a Source, a map-style dataset or an iterable")
