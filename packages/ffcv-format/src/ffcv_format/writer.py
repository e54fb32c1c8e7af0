"""DatasetWriter: encode samples into a `.beton` file in parallel, atomically."""
from concurrent.futures import ThreadPoolExecutor
import inspect
import operator
import os
import queue
import threading

import numpy as np
from tqdm.auto import tqdm

from .atomic import AtomicFile
from .code_reading import GLOBAL_RANDOM_NAMES, refers_to
from .errors import EncodeError, OutputExistsError
from .fields.base import Field, _set_current_sample_id
from .memory_allocator import MemoryAllocator, PageCounter, SampleDoesNotFit, pwrite_all
from .spec import (ALLOC_TABLE_TYPE, CURRENT_VERSION, DEFAULT_PAGE_SIZE, FIELD_ARGS_BYTES,
                   FIELD_DESC_TYPE, FIELD_NAME_MAX_BYTES, HEADER_TYPE, align_up, check_page_size,
                   metadata_start, metadata_type)


def default_num_workers():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _Cancelled(Exception):
    pass


class _Shard:
    """The samples of one WebDataset shard, read when iterated (in a writer thread)."""

    def __init__(self, shard, count, samples_of):
        self.shard, self.count, self.samples_of = shard, count, samples_of

    def __len__(self):
        return self.count

    def __iter__(self):
        return iter(self.samples_of(self.shard))

    def __repr__(self):
        return f"shard {self.shard!r}"


def _draws_from_shared_random(dataset, depth=0):
    """Whether reading ``dataset[i]`` draws from a random generator shared by threads."""
    getitem = getattr(type(dataset), '__getitem__', None)
    if getitem is not None and refers_to(getitem, GLOBAL_RANDOM_NAMES):
        return True
    inner = getattr(dataset, 'dataset', None)    # torch's Subset and the like
    return inner is not None and depth < 8 and _draws_from_shared_random(inner, depth + 1)


def _webdataset_options(dataset_class):
    """Open one shard as it is: no shuffling, no splitting by node or worker, no complaint
    about a shard whose pipeline keeps nothing (the options this webdataset version has)."""
    wanted = dict(shardshuffle=False, nodesplitter=None, workersplitter=None, empty_check=False)
    accepted = inspect.signature(dataset_class.__init__).parameters
    return {name: value for name, value in wanted.items() if name in accepted}


class DatasetWriter:
    """Writes a dataset into a `.beton` file.

    ``fields`` maps each field name (1 to 16 ASCII bytes) to a field; each sample is a
    tuple with one value per field, in that order.

    >>> writer = DatasetWriter('data.beton', {'image': RGBImageField(max_resolution=256),
    ...                                       'label': IntField()})
    >>> writer.from_indexed_dataset(my_dataset)  # doctest: +SKIP

    Samples are encoded by ``num_workers`` threads (all cores by default, or for any value
    below 1, as in FFCV 1.0). The file appears at ``path`` only once it is complete: an
    interrupted or failed write leaves nothing there. An existing file is replaced, as FFCV
    1.0 (and ``numpy.save``, ``torch.save``) do, but atomically: until the new file is
    complete the old one stays as it was, and a killed writer leaves it intact;
    ``overwrite=False`` refuses to replace it (``FileExistsError`` when the writer is made).
    """

    def __init__(self, fname, fields, page_size=DEFAULT_PAGE_SIZE, num_workers=-1, *,
                 progress=True, overwrite=True):
        self.fname = os.fspath(fname)
        self.fields = self._check_fields(fields)
        check_page_size(page_size)
        self.page_size = int(page_size)
        if not isinstance(num_workers, (int, np.integer)) or isinstance(num_workers, bool):
            raise ValueError(f"num_workers must be an integer (-1: all cores), got {num_workers!r}")
        if num_workers < 1:
            num_workers = default_num_workers()
        self.num_workers = int(num_workers)
        self.progress = progress
        self.overwrite = overwrite
        self.names = list(self.fields)
        self.metadata_type = metadata_type([f.metadata_type for f in self.fields.values()], self.names)
        self._descriptors = self._field_descriptors()
        if not overwrite and os.path.lexists(self.fname):
            raise OutputExistsError(self.fname)

    @staticmethod
    def _check_fields(fields):
        if not isinstance(fields, dict) or not fields:
            raise ValueError("fields must be a non-empty dict of {name: Field}")
        if len(fields) > 0xFFFF:
            raise ValueError(f"a file holds at most 65535 fields, got {len(fields)}")
        for name, field in fields.items():
            if not isinstance(name, str):
                raise TypeError(f"field names must be strings, got {name!r}")
            try:
                encoded = name.encode('ascii')
            except UnicodeEncodeError:
                raise ValueError(f"field name {name!r} is not ASCII") from None
            if not 1 <= len(encoded) <= FIELD_NAME_MAX_BYTES or '\0' in name:
                raise ValueError(f"field name {name!r} is {len(encoded)} bytes long; names must be "
                                 f"1 to {FIELD_NAME_MAX_BYTES} ASCII bytes (without NUL)")
            if not isinstance(field, Field):
                raise TypeError(f"field {name!r} must be a Field instance (e.g. IntField()), "
                                f"got {field!r:.80}")
        return dict(fields)

    def _field_descriptors(self):
        descriptors = np.zeros(len(self.fields), dtype=FIELD_DESC_TYPE)
        for i, (name, field) in enumerate(self.fields.items()):
            encoded = np.frombuffer(name.encode('ascii'), dtype=np.uint8)
            descriptors[i]['type_id'] = field.type_id
            descriptors[i]['name'][:encoded.size] = encoded
            args = np.asarray(field.to_binary()).tobytes()
            if len(args) > FIELD_ARGS_BYTES:
                raise ValueError(f"field {name!r}: to_binary() returned {len(args)} bytes, "
                                 f"at most {FIELD_ARGS_BYTES} fit")
            descriptors[i]['arguments'][:len(args)] = np.frombuffer(args, dtype=np.uint8)
        return descriptors

    # ------------------------------------------------------------------ sources

    def from_indexed_dataset(self, dataset, indices=None, chunksize=100, shuffle_indices=False,
                             *, seed=None, thread_safe=None):
        """Write ``dataset[i]`` for each ``i`` in ``indices`` (default: all), in order.

        ``shuffle_indices`` writes them in a random order (seeded by ``seed``).

        Samples are read (``dataset[i]``) and encoded by the worker threads. A dataset whose
        ``__getitem__`` draws from a random generator the threads share (numpy's or Python's
        global one, e.g. ``np.random.seed(i)`` then ``np.random.rand(...)``; torch's) would
        then give other samples than it gives when read alone, so such a dataset is read one
        sample at a time (the encoding stays parallel). Whether it does is read from the
        code of ``__getitem__`` (and of a wrapped ``dataset.dataset``, as torch's ``Subset``
        has); ``thread_safe=True`` or ``False`` says it instead.
        """
        length = len(dataset)
        if indices is None:
            indices = np.arange(length)
        else:
            indices = np.asarray(indices)
            if indices.ndim != 1 or (indices.size and not np.issubdtype(indices.dtype, np.integer)):
                raise ValueError("indices must be a 1-D sequence of integers")
            bad = (indices < 0) | (indices >= length)
            if bad.any():
                raise IndexError(f"index {int(indices[bad][0])} is out of range for a dataset "
                                 f"of {length} samples")
        if shuffle_indices:
            indices = np.random.default_rng(seed).permutation(indices)
        chunksize = self._check_chunksize(chunksize)

        def chunks():
            for start in range(0, len(indices), chunksize):
                chunk = indices[start:start + chunksize]
                yield start, [int(i) for i in chunk]

        if thread_safe is None:
            thread_safe = not _draws_from_shared_random(dataset)
        if thread_safe:
            def get(index):
                return dataset[index]
        else:
            lock = threading.Lock()

            def get(index):
                with lock:
                    return dataset[index]

        self._write(chunks(), get, len(indices), known_length=True)

    def from_iterable(self, iterable, chunksize=100):
        """Write every sample ``iterable`` yields, in order (its length need not be known)."""
        chunksize = self._check_chunksize(chunksize)
        hint = operator.length_hint(iterable, 0)
        iterator = iter(iterable)

        def chunks():
            start = 0
            while True:
                chunk = []
                for sample in iterator:
                    chunk.append(sample)
                    if len(chunk) == chunksize:
                        break
                if not chunk:
                    return
                yield start, chunk
                start += len(chunk)

        self._write(chunks(), None, hint, known_length=False)

    def from_webdataset(self, shards, pipeline):
        """Write the samples of WebDataset ``shards`` (tar files: paths or URLs), shard after
        shard, as FFCV 1.0 does: each shard is opened with ``webdataset.WebDataset`` and turned
        into samples (tuples, one value per field) by ``pipeline(dataset)``, e.g.
        ``lambda ds: ds.decode('rgb8').to_tuple('jpg', 'cls')``.

        Shards are read in parallel, each twice: once to count its samples (so that every
        sample's place is known), once to write them. Needs the ``webdataset`` package.
        (``ffcv convert`` reads WebDataset shards too, resumably, without a pipeline.)
        """
        try:
            import webdataset
        except ImportError:
            raise ImportError("DatasetWriter.from_webdataset needs the webdataset package: "
                              "pip install webdataset") from None
        shards = [os.fspath(shard) for shard in shards]
        options = _webdataset_options(webdataset.WebDataset)

        def samples_of(shard):
            return pipeline(webdataset.WebDataset(shard, **options))

        with ThreadPoolExecutor(self.num_workers, thread_name_prefix='ffcv-shard-counter') as pool:
            counts = list(pool.map(lambda shard: sum(1 for _ in samples_of(shard)), shards))
        starts = np.cumsum([0] + counts)[:-1]
        chunks = ((int(start), _Shard(shard, count, samples_of)) for start, shard, count in zip(starts, shards, counts))
        self._write(chunks, None, int(sum(counts)), known_length=True)

    @staticmethod
    def _check_chunksize(chunksize):
        if not isinstance(chunksize, (int, np.integer)) or chunksize < 1:
            raise ValueError(f"chunksize must be a positive integer, got {chunksize!r}")
        return int(chunksize)

    # ------------------------------------------------------------------ writing

    def _write(self, chunks, get, length, known_length):
        target = AtomicFile(self.fname, overwrite=self.overwrite)
        try:
            self._write_into(target.fd, chunks, get, length, known_length)
            target.commit()
        except BaseException:
            target.abort()
            raise

    def _write_into(self, fd, chunks, get, length, known_length):
        row_size = self.metadata_type.itemsize
        meta_start = metadata_start(len(self.fields))
        data_start = align_up(meta_start + length * row_size, self.page_size)
        pages = PageCounter()
        pwrite_all(fd, self._descriptors, HEADER_TYPE.itemsize)
        allocators = [MemoryAllocator(self.fname, data_start, self.page_size, fd=fd, next_page=pages)
                      for _ in range(self.num_workers)]
        allocating = set()    # indices of the fields that allocated data
        idle = queue.SimpleQueue()
        for allocator in allocators:
            idle.put(allocator)
        cancel = threading.Event()
        metadata_chunks = []
        num_samples = 0
        bar = tqdm(total=length if known_length else None, disable=not self.progress,
                   unit='samples', desc=os.path.basename(self.fname), leave=False)
        executor = ThreadPoolExecutor(self.num_workers, thread_name_prefix='ffcv-writer')
        # Finished chunks arrive through a queue rather than concurrent.futures.wait():
        # a Ctrl-C landing inside wait() can leave futures' locks held, and the worker
        # threads then block forever when they complete (seen as a hang on SIGINT).
        completed = queue.SimpleQueue()
        in_flight = 0
        try:
            for start, items in chunks:
                while in_flight >= 2 * self.num_workers:
                    num_samples += self._collect(completed.get(), fd, meta_start, known_length,
                                                 metadata_chunks, bar)
                    in_flight -= 1
                future = executor.submit(self._encode_chunk, start, items, get, idle, cancel, allocating)
                in_flight += 1
                future.add_done_callback(completed.put)
            while in_flight:
                num_samples += self._collect(completed.get(), fd, meta_start, known_length,
                                             metadata_chunks, bar)
                in_flight -= 1
        except BaseException:
            cancel.set()
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            bar.close()
        for allocator in allocators:
            allocator.flush_page()

        needed_start = align_up(meta_start + num_samples * row_size, self.page_size)
        if pages.count and needed_start > data_start:
            # from_iterable got more samples than room was left for: move the pages.
            self._relocate(fd, pages.count, data_start, needed_start - data_start, allocators,
                           metadata_chunks, allocating)
            data_start = needed_start
        table = self._allocation_table(allocators)
        if not known_length:
            metadata_chunks.sort(key=lambda chunk: chunk[0])
            for start, metadata in metadata_chunks:
                pwrite_all(fd, metadata, meta_start + start * self.metadata_type.itemsize)
        if pages.count:
            alloc_table_ptr = data_start + pages.count * self.page_size
        else:
            alloc_table_ptr = meta_start + num_samples * row_size
        pwrite_all(fd, table, alloc_table_ptr)
        os.ftruncate(fd, alloc_table_ptr + table.nbytes)
        header = np.zeros(1, dtype=HEADER_TYPE)
        header['version'] = CURRENT_VERSION
        header['num_fields'] = len(self.fields)
        header['page_size'] = self.page_size
        header['num_samples'] = num_samples
        header['alloc_table_ptr'] = alloc_table_ptr
        pwrite_all(fd, header, 0)

    def _collect(self, future, fd, meta_start, known_length, metadata_chunks, bar):
        start, metadata = future.result()
        if known_length:
            pwrite_all(fd, metadata, meta_start + start * self.metadata_type.itemsize)
        else:
            metadata_chunks.append((start, metadata))
        bar.update(len(metadata))
        return len(metadata)

    def _encode_chunk(self, start, items, get, idle, cancel, allocating):
        allocator = idle.get()
        try:
            metadata = np.zeros(len(items), dtype=self.metadata_type)
            columns = [metadata[name] for name in self.names]
            fields = list(self.fields.values())
            num_fields = len(fields)
            done = 0
            for j, item in enumerate(items):
                done = j + 1
                if cancel.is_set():
                    raise _Cancelled()
                sample_id = start + j
                _set_current_sample_id(sample_id)
                if get is not None:
                    try:
                        sample = get(item)
                    except Exception as e:
                        e.add_note(f"(raised by the dataset while reading index {item} for sample {sample_id})")
                        raise
                    where = f"sample {sample_id}" + (f" (dataset index {item})" if item != sample_id else "")
                else:
                    sample = item
                    where = f"sample {sample_id}"
                if not isinstance(sample, (tuple, list)):
                    sample = (sample,)
                if len(sample) != num_fields:
                    raise EncodeError(
                        f"{where} has {len(sample)} value(s) but the writer has {num_fields} "
                        f"field(s) {self.names}", sample_id)
                while True:   # a sample that does not fit on its page is encoded again on a fresh one
                    allocator.set_current_sample(sample_id)
                    try:
                        self._encode_sample(fields, columns, j, sample, allocator, where, sample_id, allocating)
                        break
                    except SampleDoesNotFit:
                        continue
            if done != len(items):
                raise EncodeError(f"{items!r} gave {done} samples, {len(items)} were expected "
                                  f"(it changed while being written?)", start + done)
            return start, metadata
        finally:
            _set_current_sample_id(None)
            idle.put(allocator)

    def _encode_sample(self, fields, columns, j, sample, allocator, where, sample_id, allocating):
        for k, field in enumerate(fields):
            allocated = allocator.num_allocations
            try:
                field.encode(columns[k][j:j + 1], sample[k], allocator.malloc)
            except SampleDoesNotFit:
                raise
            except Exception as e:
                raise EncodeError(f"{where}, field {self.names[k]!r} ({type(field).__name__}): {e}",
                                  sample_id, self.names[k]) from e
            if allocator.num_allocations != allocated:
                allocating.add(k)

    def _allocation_table(self, allocators):
        flat = np.concatenate([a.entries() for a in allocators])
        table = flat.view(ALLOC_TABLE_TYPE) if flat.size else np.zeros(0, ALLOC_TABLE_TYPE)
        return np.sort(table, order='ptr')

    def _relocate(self, fd, num_pages, data_start, delta, allocators, metadata_chunks, allocating):
        for k in allocating:
            field = list(self.fields.values())[k]
            if not field.pointer_names:
                raise EncodeError(
                    f"field {self.names[k]!r} ({type(field).__name__}) does not declare where it "
                    "stores data pointers (pointer_names), so its pages cannot be moved; "
                    "write with from_indexed_dataset or give the iterable a __len__", None, self.names[k])
        page = bytearray(self.page_size)
        for index in reversed(range(num_pages)):
            old = data_start + index * self.page_size
            read = os.preadv(fd, [page], old)
            assert read == self.page_size
            pwrite_all(fd, page, old + delta)
        for _, metadata in metadata_chunks:
            for k in allocating:
                column = metadata[self.names[k]]
                for pointer in list(self.fields.values())[k].pointer_names:
                    target = column[pointer] if pointer else column
                    target += np.uint64(delta)
        for allocator in allocators:
            allocator.move_pages(delta)
