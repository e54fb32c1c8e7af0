"""DatasetWriter: encode samples into a `.beton` file in parallel, atomically."""
import collections
from concurrent.futures import ThreadPoolExecutor
import functools
import inspect
import itertools
import operator
import os
import queue
import threading

import numpy as np
from tqdm.auto import tqdm

from .atomic import AtomicFile
from .code_reading import GLOBAL_RANDOM_NAMES, refers_to
from .errors import EncodeError, OutputExistsError, OutputWriteError, output_write_errors
from .fields.base import Field, _set_current_sample_id
from .memory_allocator import MemoryAllocator, PageCounter, SampleDoesNotFit, pwrite_all
from .spec import (ALLOC_TABLE_TYPE, CURRENT_VERSION, DEFAULT_PAGE_SIZE, FIELD_ARGS_BYTES,
                   FIELD_DESC_TYPE, FIELD_NAME_MAX_BYTES, HEADER_TYPE, align_up, check_page_size,
                   metadata_start, metadata_type)
from .staging import MIN_STAGING_BUDGET, PROVISIONAL_BASE, Flow, Job, Staging


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

    The file depends only on the samples and the settings (fields, ``page_size``, and for
    ``from_iterable`` the iterable's length hint): the same ones give the same bytes
    whatever ``num_workers`` and ``chunksize`` are. Threads encode chunks of samples into
    memory with provisional pointers; the calling thread takes the chunks in order, places their
    data in pages (a sample's data stays on one page unless it is larger than a page),
    sets the final pointers (where each field declares them: ``Field.pointer_names``) and
    writes the pages. One exception: a field that allocates data but declares no
    ``pointer_names`` (an application's own field) cannot have its pointers set after the
    fact, so from the first sample in which such a field allocates, threads place data
    themselves as FFCV 1.0 did, and the file is then the same from run to run only with
    ``num_workers=1``. Encoded data waiting for its turn (behind a chunk that is slower to
    encode) is kept in memory up to ``max(64 MiB, 2 * num_workers * page_size)`` bytes, and
    beyond that in unnamed temporary files next to ``path``.

    A write that fails for lack of space (or another storage error) raises an ``OSError``,
    :class:`~ffcv_format.errors.OutputWriteError`, that keeps the system's ``errno`` (e.g.
    ``ENOSPC``) and names ``path``; what was written is discarded.
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
            with output_write_errors(self.fname):
                target.commit()
        except BaseException as e:
            target.abort()
            if isinstance(e, OutputWriteError):
                kept = ("the file that was there is left as it was" if os.path.lexists(self.fname)
                        else "nothing was created there")
                e.add_note(f"(the incomplete new file was discarded; {kept})")
            raise

    def _write_into(self, fd, chunks, get, length, known_length):
        row_size = self.metadata_type.itemsize
        meta_start = metadata_start(len(self.fields))
        data_start = align_up(meta_start + length * row_size, self.page_size)
        pages = PageCounter()
        pwrite_all(fd, self._descriptors, HEADER_TYPE.itemsize, path=self.fname)
        # The collecting thread (this one) places every staged chunk with this allocator.
        placer = MemoryAllocator(self.fname, data_start, self.page_size, fd=fd, next_page=pages)
        allocators = [placer]
        direct = None         # the encoding threads' own allocators, once direct placement is on
        allocating = set()    # indices of the fields that allocated data
        flow = Flow(budget=self._staging_budget(),
                     spill_dir=os.path.dirname(os.path.abspath(self.fname)), path=self.fname)
        metadata_chunks = []
        num_samples = 0
        bar = tqdm(total=length if known_length else None, disable=not self.progress,
                   unit='samples', desc=os.path.basename(self.fname), leave=False)
        executor = ThreadPoolExecutor(self.num_workers, thread_name_prefix='ffcv-writer')
        # Chunks are placed in their order, the head (pending[0]) first; at most
        # 2 * num_workers are on their way. Workers report through one queue rather than
        # concurrent.futures.wait(): a Ctrl-C landing inside wait() can leave futures' locks
        # held, and the worker threads then block forever when they complete (a hang on SIGINT).
        pending = collections.deque()
        sequence = itertools.count()
        chunk_iterator = iter(chunks)
        more = True

        def submit(job):
            job.future = executor.submit(self._run_job, job, get, flow, direct, allocating)
            job.future.add_done_callback(lambda future, job=job: flow.events.put(('done', job, future)))

        try:
            while True:
                while more and len(pending) < 2 * self.num_workers:
                    try:
                        start, items = next(chunk_iterator)
                    except StopIteration:
                        more = False
                        break
                    job = Job(next(sequence), start, items, self.metadata_type, staged=direct is None)
                    pending.append(job)
                    submit(job)
                if not pending:
                    break
                head = pending[0]
                flow.head = head.seq
                if head.pieces:
                    self._place(head, head.pieces.popleft(), placer, flow)
                elif head.finished:
                    pending.popleft()
                    num_samples += self._finish(head, fd, meta_start, known_length, metadata_chunks, bar)
                elif head.needs_direct is not None:
                    # A field without pointer_names allocated: from this sample on, threads
                    # place data themselves (FFCV 1.0's way; the layout then depends on timing).
                    placer.flush_page()
                    direct = queue.SimpleQueue()
                    for _ in range(self.num_workers):
                        allocator = MemoryAllocator(self.fname, data_start, self.page_size, fd=fd,
                                                    next_page=pages)
                        allocators.append(allocator)
                        direct.put(allocator)
                    pending = self._restart_direct(pending, flow)
                    for job in pending:
                        submit(job)
                else:
                    kind, job, payload = flow.events.get()
                    if job.stale:
                        if kind == 'piece':
                            flow.release_piece(payload)
                    elif kind == 'piece':
                        job.pieces.append(payload)
                    else:
                        error = payload.exception()
                        if error is None:
                            job.finished = True
                        elif isinstance(error, _NeedsDirectPlacement):
                            job.needs_direct = error
                        else:
                            payload.result()    # raises the chunk's error, as soon as it is known
        except BaseException:
            flow.cancel.set()
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            bar.close()
            for job in pending:
                flow.release(job)
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
                pwrite_all(fd, metadata, meta_start + start * row_size, path=self.fname)
        if pages.count:
            alloc_table_ptr = data_start + pages.count * self.page_size
        else:
            alloc_table_ptr = meta_start + num_samples * row_size
        pwrite_all(fd, table, alloc_table_ptr, path=self.fname)
        with output_write_errors(self.fname):
            os.ftruncate(fd, alloc_table_ptr + table.nbytes)
        header = np.zeros(1, dtype=HEADER_TYPE)
        header['version'] = CURRENT_VERSION
        header['num_fields'] = len(self.fields)
        header['page_size'] = self.page_size
        header['num_samples'] = num_samples
        header['alloc_table_ptr'] = alloc_table_ptr
        pwrite_all(fd, header, 0, path=self.fname)

    def _restart_direct(self, pending, flow):
        """The jobs to run instead of ``pending`` with direct placement: the head goes on from
        the sample that needs it (those before are placed), the others start over."""
        head, later = pending[0], list(pending)[1:]
        for job in later:
            job.stale = True    # their threads stop at the next sample
            flow.release(job)
        head.restart_direct(head.needs_direct.row)
        return collections.deque(
            [head] + [Job(job.seq, job.start, job.items, self.metadata_type, staged=False) for job in later])

    def _staging_budget(self):
        """How many bytes of encoded data may wait in memory for their turn to be placed."""
        return max(MIN_STAGING_BUDGET, 2 * self.num_workers * self.page_size)

    def _finish(self, job, fd, meta_start, known_length, metadata_chunks, bar):
        """Write (or keep, when the length is not known yet) the metadata rows of a placed chunk."""
        if known_length:
            pwrite_all(fd, job.metadata, meta_start + job.start * self.metadata_type.itemsize,
                       path=self.fname)
        else:
            metadata_chunks.append((job.start, job.metadata))
        bar.update(job.count)
        return job.count

    # ------------------------------------------------------------ in the encoding threads

    def _run_job(self, job, get, flow, direct, allocating):
        if job.staged:
            self._encode_staged(job, get, flow, allocating)
        else:
            self._encode_direct(job, get, flow, direct, allocating)

    def _samples(self, job, get, flow):
        """``(row, sample_id, sample, where)`` for each sample of ``job`` from its first row."""
        num_fields = len(self.fields)
        done = job.first_row
        iterator = iter(job.items)
        if job.first_row:
            iterator = itertools.islice(iterator, job.first_row, None)
        for row, item in enumerate(iterator, job.first_row):
            if flow.cancel.is_set() or job.stale:
                raise _Cancelled()
            sample_id = job.start + row
            if row >= job.count:
                raise EncodeError(f"{job.items!r} gave more than {job.count} samples, {job.count} were "
                                  f"expected (it changed while being written?)", sample_id)
            done = row + 1
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
            yield row, sample_id, sample, where
        if done != job.count:
            raise EncodeError(f"{job.items!r} gave {done} samples, {job.count} were expected "
                              f"(it changed while being written?)", job.start + done)

    def _encode_staged(self, job, get, flow, allocating):
        """Encode the samples of ``job`` into memory, handing their data over in pieces (of
        about a page) for the collecting thread to place."""
        staging = Staging(self.page_size)
        mallocs = [staging.malloc if field.pointer_names else functools.partial(_refuse, self.names[k])
                   for k, field in enumerate(self.fields.values())]
        columns = [job.metadata[name] for name in self.names]
        try:
            for row, sample_id, sample, where in self._samples(job, get, flow):
                staging.begin_sample(row)
                try:
                    self._encode_sample(columns, row, sample, mallocs, staging, where, sample_id, allocating)
                except _NeedsDirectPlacement as e:
                    staging.drop_sample()
                    flow.hand_over(job, staging.cut(row))
                    e.row = row
                    raise
                staging.end_sample()
                if staging.piece.nbytes >= self.page_size:
                    flow.hand_over(job, staging.cut(row + 1))
            flow.hand_over(job, staging.cut(job.count))
        finally:
            _set_current_sample_id(None)

    def _encode_direct(self, job, get, flow, direct, allocating):
        """Encode the samples of ``job`` straight into the pages of one of the threads'
        allocators (taken from the queue ``direct``)."""
        allocator = direct.get()
        try:
            mallocs = [allocator.malloc] * len(self.fields)
            columns = [job.metadata[name] for name in self.names]
            for row, sample_id, sample, where in self._samples(job, get, flow):
                while True:   # a sample that does not fit on its page is encoded again on a fresh one
                    allocator.set_current_sample(sample_id)
                    try:
                        self._encode_sample(columns, row, sample, mallocs, allocator, where, sample_id,
                                            allocating)
                        break
                    except SampleDoesNotFit:
                        continue
        finally:
            _set_current_sample_id(None)
            direct.put(allocator)

    def _encode_sample(self, columns, row, sample, mallocs, counter, where, sample_id, allocating):
        for k, field in enumerate(self.fields.values()):
            allocated = counter.num_allocations
            try:
                field.encode(columns[k][row:row + 1], sample[k], mallocs[k])
            except (SampleDoesNotFit, _NeedsDirectPlacement, OutputWriteError):
                raise
            except Exception as e:
                raise EncodeError(f"{where}, field {self.names[k]!r} ({type(field).__name__}): {e}",
                                  sample_id, self.names[k]) from e
            if counter.num_allocations != allocated:
                allocating.add(k)

    # ------------------------------------------------------------ in the collecting thread

    def _place(self, job, piece, placer, flow):
        """Put the data of ``piece`` (of ``job``, the head chunk) into pages and give its
        metadata rows the final pointers."""
        segments = piece.take_segments(self.fname)
        rows = np.frombuffer(piece.rows, dtype=np.int64)
        counts = np.frombuffer(piece.counts, dtype=np.int64)
        sizes = np.frombuffer(piece.sizes, dtype=np.int64)
        final = placer.store_samples(rows + job.start, counts, sizes, segments)
        flow.release_piece(piece)
        footprints = np.maximum(sizes, 1).astype(np.uint64)
        ends = np.cumsum(footprints) + np.uint64(piece.start)
        provisional = ends - footprints
        owners = np.repeat(rows, counts)
        block = job.metadata[piece.lo:piece.hi]
        for k, field in enumerate(self.fields.values()):
            for member in field.pointer_names:
                column = block[self.names[k]]
                target = column[member] if member else column
                values = target.astype(np.uint64)
                # provisional pointers lie in [2**62, 2**63); other values are left as they are
                staged = (values >= PROVISIONAL_BASE) & (values < 2 * PROVISIONAL_BASE)
                if not staged.any():
                    continue
                values = values[staged]
                index = np.maximum(np.searchsorted(provisional, values, side='right') - 1, 0)
                value_rows = np.flatnonzero(staged) + piece.lo
                wrong = ((values < provisional[index]) | (values >= ends[index])
                         | (owners[index] != value_rows))
                if wrong.any():
                    bad = int(np.flatnonzero(wrong)[0])
                    sample_id = job.start + int(value_rows[bad])
                    raise EncodeError(
                        f"sample {sample_id}, field {self.names[k]!r} ({type(field).__name__}): its "
                        f"pointer {member or 'value'!r} is {int(values[bad])}, which is not inside an "
                        f"allocation made for this sample", sample_id, self.names[k])
                target[staged] = final[index] + (values - provisional[index])

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
            with output_write_errors(self.fname):
                read = os.preadv(fd, [page], old)
            assert read == self.page_size
            pwrite_all(fd, page, old + delta, path=self.fname)
        for _, metadata in metadata_chunks:
            for k in allocating:
                column = metadata[self.names[k]]
                for pointer in list(self.fields.values())[k].pointer_names:
                    target = column[pointer] if pointer else column
                    target += np.uint64(delta)
        for allocator in allocators:
            allocator.move_pages(delta)


def _refuse(name, size):
    raise _NeedsDirectPlacement(name)


class _NeedsDirectPlacement(Exception):
    """A field that declares no ``pointer_names`` allocated data: its pointers cannot be set
    once its data is placed, so the rest of the file is written with direct placement.
    ``row``: the chunk's row of the sample it happened in."""

    def __init__(self, field):
        super().__init__(f"field {field!r} allocates data but declares no pointer_names")
        self.row = None
