"""convert(): any source into one ``.beton`` file, in parts that survive interruption.

How work is never lost
----------------------
The source is split into *parts*: runs of ``part_size`` consecutive items for sources of
known length (image folders, manifests, map-style datasets) and for iterables, one part
per shard for WebDataset. Next to the destination, a work folder ``DST.parts/`` holds:

- ``conversion.json``: what is being converted (the source and its listing's checksum,
  the fields and their settings, the part plan), written when the conversion starts;
- ``part-000012.beton``: each finished part, written atomically by ``DatasetWriter``;
- ``part-000012.json``: its item count and the samples skipped in it, written before
  the part's ``.beton`` gets its name (so a part file never exists without it);
- ``lock``: held (``flock``) while a conversion runs, so two cannot write at once.

The parts are written here (:func:`write_parts`, on ``workers`` threads) or as Ray tasks on
a cluster (``engine='ray'``, :mod:`ffcv_convert.ray_engine`), the same parts either way.

Running the same conversion again (after Ctrl-C, a crash, a killed machine, or after
fixing a bad file) finds the work folder, checks that ``conversion.json`` matches, and
converts only the parts that have no ``.beton`` yet. When every part is done they are
merged into the destination (packed, without decoding) through a temporary file that
gets its name only when complete; then the work folder is removed (a run that died in
between is recognised on the next run, which only removes the folder). Disk space: the
parts and the destination both exist while merging (about twice the output size).
"""
import fcntl
import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np
from ffcv_format import DatasetWriter, Field, OutputExistsError
from ffcv_format.atomic import write_text_atomically
from ffcv_format.spec import DEFAULT_PAGE_SIZE
from ffcv_format.writer import default_num_workers

from .combine import combine
from .errors import BadSampleError, ConversionError
from .fieldspec import FieldSpec, parse_field_specs
from .pipeline import Job, PartEnd, Pipeline
from .sources import IndexedSource, StreamSource, WebDataset, open_source

__all__ = ['convert', 'ConversionResult', 'work_dir_for', 'DEFAULT_PART_SIZE', 'DEFAULT_IMAGE_OPTIONS',
           'PartPlan', 'PartSettings', 'write_parts', 'part_name', 'other_conversion_error', 'STATE_FILE']

DEFAULT_PART_SIZE = 1000
WORK_SUFFIX = '.parts'
STATE_FILE = 'conversion.json'
STATE_VERSION = 1
#: image settings used for image fields given by name (``'image=jpg:image'``) or by default
DEFAULT_IMAGE_OPTIONS = {'write_mode': 'jpg', 'jpeg_quality': 90}
_CHEAP_FIELDS = ('IntField', 'FloatField', 'BytesField', 'JSONField', 'NDArrayField',
                 'TorchTensorField', 'SourceImageField')


@dataclass
class ConversionResult:
    """What :func:`convert` did."""

    path: str
    num_samples: int
    num_parts: int
    parts_reused: int
    #: ``(where, reason)`` of each skipped sample
    skipped: list = dataclass_field(default_factory=list)
    skipped_report: str = None
    fields: list = dataclass_field(default_factory=list)
    #: ``(where, reason)`` of each folder skipped because it could not be listed (its
    #: samples are unknown; its class keeps its label)
    skipped_folders: list = dataclass_field(default_factory=list)


def work_dir_for(dst):
    """The work folder of a conversion into ``dst``: ``DST.parts`` next to it."""
    return os.path.abspath(os.fspath(dst)) + WORK_SUFFIX



def _field_specs(source, fields, keys, image_options):
    if fields is None:
        if source.tuple_records:
            raise ValueError("converting a Python dataset or iterable needs fields={name: Field, ...} "
                             "in the order of the values each item gives")
        return parse_field_specs(source.default_fields(), image_options)
    if isinstance(fields, str) or (isinstance(fields, (list, tuple)) and fields
                                   and all(isinstance(f, str) for f in fields)):
        return parse_field_specs(fields, image_options)
    if isinstance(fields, dict):
        keys = dict(keys or {})
        unknown = set(keys) - set(fields)
        if unknown:
            raise ValueError(f"keys= names fields that are not in fields=: {sorted(unknown)}")
        return [FieldSpec(name, f, key=keys.get(name)) for name, f in fields.items()]
    if isinstance(fields, (list, tuple)) and all(isinstance(f, FieldSpec) for f in fields):
        return list(fields)
    raise TypeError("fields must be a dict {name: Field}, a list of 'NAME=KEY:TYPE' strings or of "
                    f"FieldSpec, got {type(fields).__name__}")


class PartPlan:
    """How the source splits into parts, and the jobs of the parts still to do.

    ``kind``: ``'ranges'`` (an indexed source: part ``p`` is items ``p * part_size`` to
    ``(p + 1) * part_size``), ``'streams'`` (one part per stream, e.g. a WebDataset shard)
    or ``'chunks'`` (an iterable: parts are known only by reading it in order).
    """

    def __init__(self, source, part_size):
        self.source = source
        self.part_size = part_size
        if isinstance(source, IndexedSource):
            self.kind = 'ranges'
            self.num_items = len(source)
            self.num_parts = -(-self.num_items // part_size)
        elif isinstance(source, WebDataset) or (isinstance(source, StreamSource)
                                                and source.num_streams is not None):
            self.kind = 'streams'
            self.num_items = None
            self.num_parts = source.num_streams
        else:
            self.kind = 'chunks'
            self.num_items = None
            self.num_parts = None

    def describe(self):
        return {'kind': self.kind, 'part_size': self.part_size if self.kind != 'streams' else None,
                'num_parts': self.num_parts}

    def jobs(self, done, items=None):
        """Jobs of the parts not in ``done``, each part followed by a PartEnd. ``items``:
        ``{part: source items}`` of parts in ``done`` (their ``part-N.json``): a stream's items
        then keep the positions an uninterrupted conversion gives them, which seed per-sample
        choices (``write_mode='proportion'``)."""
        source = self.source
        if self.kind == 'ranges':
            for part in range(self.num_parts):
                if part in done:
                    continue
                stop = min(self.num_items, (part + 1) * self.part_size)
                for position in range(part * self.part_size, stop):
                    yield Job(position, part, read=_Reader(source, position))
                yield PartEnd(part)
        elif self.kind == 'streams':
            todo = [p for p in range(self.num_parts) if p not in done]
            items = items or {}
            position = 0
            previous = -1
            for k, part in enumerate(todo):
                # the items of the finished parts before this one come first
                position += sum(items.get(q, 0) for q in range(previous + 1, part))
                previous = part
                stream = source.stream(part, upcoming=todo[k + 1:]) if isinstance(source, WebDataset) \
                    else source.stream(part)
                for where, record in stream:
                    yield Job(position, part, where=where, record=record)
                    position += 1
                yield PartEnd(part)
        else:
            part = -1
            for position, (where, record) in enumerate(source.items()):
                new_part = position // self.part_size
                if new_part != part:
                    if part >= 0 and part not in done:
                        yield PartEnd(part)
                    part = new_part
                if part not in done:
                    yield Job(position, part, where=where, record=record)
            if part >= 0 and part not in done:
                yield PartEnd(part)


class _Reader:
    """The read step of item ``position`` of an indexed source (run on the I/O pool)."""

    __slots__ = ('source', 'position')

    def __init__(self, source, position):
        self.source, self.position = source, position

    def __call__(self):
        if isinstance(self.source, IndexedSource) and self.source.tuple_records:
            try:
                return self.source.read(self.position)
            except Exception as e:
                raise BadSampleError(f"{type(e).__name__}: {e}", f"item {self.position}") from e
        return self.source.read(self.position)


class _Preparer:
    """Record -> the tuple the writer stores, images decoded/resized/compressed."""

    def __init__(self, specs, source):
        self.specs = specs
        self.tuple_records = source.tuple_records
        self.where = source.where if isinstance(source, IndexedSource) else (lambda i: f"item {i}")

    def __call__(self, job, record):
        try:
            return self._prepare(job, record)
        except BadSampleError as e:
            if e.where is None:  # named only now: naming every item up front costs time
                raise BadSampleError(e.reason, self.where(job.position)) from None
            raise

    def _prepare(self, job, record):
        where = job.where
        specs = self.specs
        if self.tuple_records:
            if not isinstance(record, (tuple, list)):
                record = (record,)
            if len(record) != len(specs):
                raise BadSampleError(f"gives {len(record)} value(s) but there are {len(specs)} fields "
                                     f"({', '.join(s.name for s in specs)})", where)
            values = []
            for spec, raw in zip(specs, record):
                try:
                    values.append(spec.convert(raw))
                except (ValueError, TypeError) as e:
                    raise BadSampleError(f"value for field {spec.name!r} does not convert: {e}",
                                         where) from None
        else:
            values = [spec.value(record, where) for spec in specs]
        for k, spec in enumerate(specs):
            if spec.is_image:
                value = values[k]
                if getattr(value, 'where', 1) is None:
                    value.where = where if where is not None else self.where(job.position)
                try:
                    values[k] = spec.field.prepare(value, job.position)
                except BadSampleError:
                    raise
                except (ValueError, TypeError) as e:
                    raise BadSampleError(f"field {spec.name!r}: {e}", where) from None
        return tuple(values)


class _PartSamples:
    """The samples of one part, pulled from the pipeline by the part's DatasetWriter."""

    def __init__(self, pipeline, part, hint, state):
        self.pipeline, self.part, self.hint, self.state = pipeline, part, hint, state
        self.items = 0
        self.skipped = []
        self.samples = 0
        self.finished = False

    def __iter__(self):
        return self

    def __length_hint__(self):
        return self.hint

    def __next__(self):
        if self.finished:  # the writer may ask again after the end
            raise StopIteration
        state = self.state
        while True:
            entry = self.pipeline.next()
            if entry is None:
                raise ConversionError(f"internal error: the jobs of part {self.part} ended "
                                      "without its end marker")
            if isinstance(entry, PartEnd):
                self.finished = True
                raise StopIteration
            job, ok, value = entry
            self.items += 1
            if ok:
                self.samples += 1
                state.bar.update(1)
                return value
            try:
                raise value
            except BadSampleError as e:
                where = e.where or job.where or f"item {job.position}"
                if state.on_error == 'skip':
                    self.skipped.append((where, e.reason))
                    state.bar.update(1)
                    continue
                raise ConversionError(
                    f"cannot read {where}: {e.reason}. Fix or remove it and run the same conversion again "
                    "(finished parts are kept), or skip unreadable samples with on_error='skip' (--skip-bad)"
                ) from e
            except ConversionError:
                raise
            except Exception as e:
                where = job.where or state.source_where(job.position)
                raise ConversionError(f"reading {where} failed: {type(e).__name__}: {e}") from e


class _State:
    def __init__(self, on_error, bar, source):
        self.on_error, self.bar, self.source = on_error, bar, source

    def source_where(self, position):
        try:
            return self.source.where(position)
        except Exception:
            return f"item {position}"


def part_name(part: int) -> str:
    """The file name (without extension) of part ``part`` in the work folder."""
    return f"part-{part:06d}"


def _load_done(work, plan):
    done = {}
    for name in os.listdir(work):
        if name.startswith('part-') and name.endswith('.beton'):
            stem = name[:-len('.beton')]
            info_path = os.path.join(work, stem + '.json')
            try:
                part = int(stem[len('part-'):])
                with open(info_path, encoding='utf-8') as f:
                    done[part] = json.load(f)
            except (ValueError, OSError, json.JSONDecodeError):
                continue  # not a finished part: it is redone
    if plan.num_parts is not None:
        done = {p: info for p, info in done.items() if p < plan.num_parts}
    return done


def _finished_before(dst, work, state, plan, specs):
    """The result of a conversion whose merge into ``dst`` finished but whose work folder was
    not removed (the process died in between), or None if ``dst`` is anything else."""
    from ffcv_format import Reader

    try:
        with open(os.path.join(work, STATE_FILE), encoding='utf-8') as f:
            if json.load(f) != state:
                return None
        done = _load_done(work, plan)
        if plan.num_parts is None or len(done) != plan.num_parts:
            return None
        with Reader(dst) as reader:
            if reader.num_samples != sum(info['samples'] for info in done.values()) or \
                    list(reader.field_names) != [s.name for s in specs]:
                return None
    except (OSError, ValueError):
        return None
    shutil.rmtree(work, ignore_errors=True)
    skipped = [tuple(x) for p in sorted(done) for x in done[p]['skipped']]
    return ConversionResult(path=dst, num_samples=sum(info['samples'] for info in done.values()),
                            num_parts=len(done), parts_reused=len(done), skipped=skipped,
                            fields=[s.name for s in specs], skipped_folders=plan.source.unreadable_folders())


def _differences(old, new, prefix=''):
    """'where: old -> new' for each difference between two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) \
            and all(isinstance(x, dict) for x in old + new):
        out = []
        for k, (a, b) in enumerate(zip(old, new)):
            out += _differences(a, b, f"{prefix}[{b.get('name', k)}]")
        return out
    if old != new:
        return [f"{prefix}: {str(old)[:60]} -> {str(new)[:60]}"]
    return []


def _check_names(specs):
    seen = set()
    for spec in specs:
        name = spec.name
        if not isinstance(name, str) or not name.isascii() or not 1 <= len(name) <= 16 or '\0' in name:
            raise ValueError(f"field name {name!r} is not allowed: names are 1 to 16 ASCII characters")
        if name in seen:
            raise ValueError(f"two fields are named {name!r}")
        seen.add(name)


def other_conversion_error(where: str, old, state: dict) -> ConversionError:
    """The error for a work folder (``where``) holding finished parts of a conversion whose
    ``conversion.json`` (``old``, None if unreadable) is not ``state``."""
    differences = _differences(old, state) if isinstance(old, dict) else ['unreadable state']
    return ConversionError(
        f"{where!r} holds an unfinished conversion with other settings ("
        f"{'; '.join(differences[:4])}); run the same command as before to resume it, or pass "
        "restart=True (--restart) to discard it and start over")


def _has_parts(work):
    return any(name.startswith('part-') and name.endswith('.beton') for name in os.listdir(work))


def _open_work_dir(work, state, restart):
    """Create or reopen the work folder; returns the lock's file descriptor."""
    if restart and os.path.isdir(work):
        shutil.rmtree(work)
    os.makedirs(work, exist_ok=True)
    lock = os.open(os.path.join(work, 'lock'), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise ConversionError(f"another conversion is running in {work!r} (its lock is held); "
                              "wait for it or stop it first") from None
    state_path = os.path.join(work, STATE_FILE)
    if os.path.exists(state_path):
        try:
            with open(state_path, encoding='utf-8') as f:
                old = json.load(f)
        except (OSError, json.JSONDecodeError):
            old = None
        if old != state and not _has_parts(work):
            old = state  # nothing was finished: nothing to lose by starting over
            write_text_atomically(state_path, json.dumps(state, indent=1, sort_keys=True))
        if old != state:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.close(lock)
            raise other_conversion_error(work, old, state)
    else:
        write_text_atomically(state_path, json.dumps(state, indent=1, sort_keys=True))
    return lock


def _write_report(path, skipped, dst, folders=()):
    lines = [f"# samples skipped while converting into {dst}: {len(skipped)}"]
    if folders:
        lines.append(f"# folders skipped (they could not be listed; their classes keep their labels): "
                     f"{len(folders)}")
    lines.append("# where\treason")
    lines += [f"{where}\t{reason}" for where, reason in list(folders) + list(skipped)]
    write_text_atomically(path, '\n'.join(lines) + '\n')


def _refuse_unreadable_folders(folders):
    """The error for folders that could not be listed, when they are not to be skipped."""
    where, reason = folders[0]
    more = ""
    if len(folders) > 1:
        others = ', '.join(w for w, _ in folders[1:4])
        more = f" (and {len(folders) - 1} more: {others}{', ...' if len(folders) > 4 else ''})"
    return ConversionError(
        f"cannot read the folder {where}: {reason}{more}. Its images are unknown: fix it and run the same "
        "conversion again, or skip it with on_error='skip' (--skip-bad): its class keeps its label "
        "and the folder is listed in the skipped report")


def _choose_engine(engine, ray_address, parts_url, parts_storage_options):
    """None for the local engine, or the Ray engine (which checks that Ray is installed)."""
    if engine == 'ray':
        from .ray_engine import RayEngine
        return RayEngine(ray_address, parts_url=parts_url, parts_storage_options=parts_storage_options)
    if engine != 'local':
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    for name, value in (('ray_address', ray_address), ('parts_url', parts_url),
                        ('parts_storage_options', parts_storage_options)):
        if value is not None:
            raise ValueError(f"{name} is for engine='ray' (the local engine keeps its parts in DST.parts/)")
    return None


def convert(source, dst, fields=None, *, keys=None, image_options=None, to_fields=None, kind=None,
            path_column='path', storage_options=None, workers=-1, io_workers=None,
            part_size=DEFAULT_PART_SIZE, on_error='stop', skipped_report=None, overwrite=False,
            restart=False, page_size=DEFAULT_PAGE_SIZE, progress=True, engine='local', ray_address=None,
            parts_url=None, parts_storage_options=None):
    """Convert ``source`` into the ``.beton`` file ``dst``; resumable, fast, atomic.

    >>> convert('data/train', 'train.beton',                           # an image folder
    ...         image_options={'write_mode': 'jpg', 'max_resolution': 256})   # doctest: +SKIP
    ConversionResult(path='train.beton', num_samples=1281167, ...)
    >>> convert('s3://bucket/shards/train-{000..146}.tar', 'train.beton',
    ...         fields=['image=jpg:image', 'label=cls:int'])             # doctest: +SKIP
    >>> convert(cifar10, 'cifar.beton', fields={'image': RGBImageField(), 'label': IntField()},
    ...         to_fields=lambda item: (np.asarray(item[0]), item[1]))  # doctest: +SKIP

    ``source``: an image folder, a CSV/Parquet manifest or WebDataset shards (a path or
    fsspec URL, its kind guessed from its name or given by ``kind``: ``'folder'``,
    ``'manifest'``, ``'webdataset'``), a :class:`~ffcv_convert.sources.Source`, a
    map-style dataset or an iterable (items mapped to field values by ``to_fields``).

    ``fields``: a dict ``{name: Field}`` (record keys default to the names; ``keys``
    maps names to other keys), or ``'NAME=KEY:TYPE'`` specs (e.g. ``['image=jpg:image',
    'label=cls:int']``, image fields made with ``image_options``, default
    :data:`DEFAULT_IMAGE_OPTIONS`). Default: the source's own (image and label).

    ``workers`` threads encode (default: all cores). Remote files are read by
    ``io_workers`` threads (default 64), so that many requests are in flight; local files
    are read by the encoding threads themselves unless ``io_workers`` is given. ``on_error='skip'``
    skips missing, unreadable or corrupt samples and lists them in ``skipped_report``
    (default ``DST.skipped.txt``); the default ``'stop'`` stops at the first one with a
    :class:`ConversionError` naming it. A folder of the source that cannot be listed is
    refused the same way, before anything is written, or with ``'skip'`` listed in the
    report (``ConversionResult.skipped_folders``); either way an image folder's classes
    keep their labels (the unreadable folder's class too, without that folder's images).
    Interrupted conversions resume where they stopped when run again with the same
    arguments (see the module documentation); ``restart`` discards unfinished work instead.

    ``engine='ray'`` converts the parts as Ray tasks on the cluster at ``ray_address``
    (default: ``$RAY_ADDRESS``, else a Ray started on this machine), needs
    ``pip install 'ffcv-convert[ray]'``, and gives the same file, byte for byte; ``workers``
    is then each task's encoding threads and CPUs (default 1). The tasks write the parts
    into ``DST.parts/``, which must then be on a filesystem every node sees at the same
    path, or upload them to ``parts_url`` (object storage such as ``s3://bucket/prefix``,
    opened with ``parts_storage_options``), from where this machine downloads them as they
    finish. See :mod:`ffcv_convert.ray_engine`.
    """
    dst = os.path.abspath(os.fspath(dst))
    engine = _choose_engine(engine, ray_address, parts_url, parts_storage_options)
    if on_error not in ('stop', 'skip'):
        raise ValueError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
    if not isinstance(part_size, (int, np.integer)) or part_size < 1:
        raise ValueError(f"part_size must be a positive integer, got {part_size!r}")
    if workers == -1 or workers is None:
        workers = default_num_workers() if engine is None else 1
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer or -1 (all cores), got {workers!r}")
    if not os.path.isdir(os.path.dirname(dst)):
        raise FileNotFoundError(f"the folder of the destination {dst!r} does not exist")
    work = work_dir_for(dst)
    if not overwrite and os.path.lexists(dst) and not os.path.isdir(work):
        raise OutputExistsError(dst)
    image_options = dict(DEFAULT_IMAGE_OPTIONS, **(image_options or {}))

    source = open_source(source, kind=kind, storage_options=storage_options, path_column=path_column,
                         to_fields=to_fields)
    specs = _field_specs(source, fields, keys, image_options)
    if isinstance(fields, dict):
        for name, f in fields.items():
            if not isinstance(f, Field):
                raise TypeError(f"field {name!r} must be a Field instance, got {f!r:.80}")
    _check_names(specs)
    known = source.record_keys()
    if known is not None:
        for spec in specs:
            if spec.key not in known:
                raise ValueError(f"field {spec.name!r} takes {spec.key!r}, which {source!r} does not have; "
                                 f"its records have {', '.join(map(repr, known))}")
    separate_reads = source.remote or io_workers is not None
    if io_workers is None:
        io_workers = 64 if source.remote else workers
    if not isinstance(io_workers, (int, np.integer)) or io_workers < 1:
        raise ValueError(f"io_workers must be a positive integer, got {io_workers!r}")
    unreadable = source.unreadable_folders()
    if unreadable and on_error == 'stop':
        raise _refuse_unreadable_folders(unreadable)
    plan = PartPlan(source, int(part_size))
    if engine is not None:
        engine.check(source, plan, specs)
    state = {'tool': 'ffcv-convert', 'version': STATE_VERSION, 'destination': dst,
             'source': source.describe(), 'fields': [s.describe() for s in specs],
             'plan': plan.describe(), 'page_size': int(page_size)}
    state = json.loads(json.dumps(state))  # as it reads back from conversion.json
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if progress else (lambda text: None)
    if not overwrite and os.path.lexists(dst):
        finished = _finished_before(dst, work, state, plan, specs)
        if finished is None:
            raise OutputExistsError(dst)
        say(f"{dst} was already converted (the previous run stopped while cleaning up); "
            f"removed the leftover {work}")
        if engine is not None:
            engine.clean_up()
        return finished
    settings = PartSettings(specs=specs, work=work, part_size=int(part_size), workers=int(workers),
                            io_workers=int(io_workers), separate_reads=separate_reads, on_error=on_error,
                            page_size=int(page_size))
    lock = _open_work_dir(work, state, restart)
    try:
        if engine is not None:
            engine.open(work, state, plan, restart, say)
        return _convert(source, dst, settings, plan, engine, skipped_report, overwrite, progress, say)
    except BaseException:
        if os.path.isdir(work) and not _has_parts(work):
            shutil.rmtree(work, ignore_errors=True)  # nothing finished to resume from
        raise
    finally:
        os.close(lock)  # releases the flock (the folder may be gone by now)


@dataclass(frozen=True)
class PartSettings:
    """What each part of a conversion is made with, whichever engine runs it (the Ray
    engine sends it to its tasks, so it holds nothing but picklable settings)."""

    #: the fields of the output (FieldSpec)
    specs: list
    #: the folder each finished part is written into (``DST.parts``)
    work: str
    part_size: int
    #: encoding threads
    workers: int
    #: reading threads (used when ``separate_reads``: remote sources, or ``io_workers`` given)
    io_workers: int
    separate_reads: bool
    #: ``'stop'`` or ``'skip'``
    on_error: str
    page_size: int


class _NoBar:
    """Stands for a progress bar where nothing is shown (a cluster's task)."""

    def update(self, count=1):
        pass


def write_parts(source, settings: PartSettings, plan: PartPlan, done: dict, bar=None,
                parts=None) -> dict:
    """Convert the parts of ``plan`` not in ``done`` (or only ``parts``), one after another.

    Each part is written into ``settings.work``: the part's ``.beton`` under a temporary
    name, then ``part-N.json`` (its item count and skipped samples), then the ``.beton``
    renamed to ``part-N.beton``, so a part counts as finished only once complete. ``bar``
    (a tqdm bar) counts samples as they are written. Returns ``{part: info}`` of the parts
    written. The local engine calls it for every missing part; the Ray engine's tasks each
    call it for their own part.
    """
    import cv2

    skip = set(done)
    if parts is not None:
        skip = set(range(plan.num_parts)) - set(parts)
    specs = settings.specs
    writer_fields = {s.name: s.field for s in specs}
    cheap = all(type(s.field).__name__ in _CHEAP_FIELDS for s in specs)
    writer_workers = 1 if cheap else settings.workers
    run_state = _State(settings.on_error, bar if bar is not None else _NoBar(), source)
    window = max(64, 2 * settings.io_workers, 16 * settings.workers)
    finished_items = {p: info['items'] for p, info in done.items()}
    pipeline = Pipeline(plan.jobs(skip, finished_items), _Preparer(specs, source),
                        read_workers=settings.io_workers, prepare_workers=settings.workers, window=window,
                        remote_reads=settings.separate_reads)
    written = {}
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # parallelism comes from our threads; OpenCV's own pool would oversubscribe
    try:
        largest_part = max([info['items'] for info in done.values()] + [plan.part_size])
        while True:
            head = pipeline.peek()
            if head is None:
                break
            part = head.part if isinstance(head, PartEnd) else head[0].part
            hint = plan.part_size if plan.kind != 'streams' else max(4096, 2 * largest_part)
            samples = _PartSamples(pipeline, part, hint, run_state)
            stem = os.path.join(settings.work, part_name(part))
            # a name of this writer's own: a Ray task run again while its first run still
            # writes (a node cut off, not dead) writes the same part beside it
            temporary = f"{stem}.beton.tmp-{socket.gethostname()}-{os.getpid()}"
            DatasetWriter(temporary, writer_fields, page_size=settings.page_size,
                          num_workers=writer_workers, progress=False, overwrite=True
                          ).from_iterable(samples, chunksize=32)
            info = {'items': samples.items, 'samples': samples.samples,
                    'skipped': [[w, r] for w, r in samples.skipped]}
            write_text_atomically(stem + '.json', json.dumps(info))
            os.replace(temporary, stem + '.beton')
            written[part] = info
            largest_part = max(largest_part, samples.items)
    finally:
        pipeline.close()
        cv2.setNumThreads(threads)
        if isinstance(source, WebDataset):
            source.close()
    return written


def _convert(source, dst, settings, plan, engine, skipped_report, overwrite, progress, say):
    from tqdm.auto import tqdm

    work, specs, page_size = settings.work, settings.specs, settings.page_size
    done = _load_done(work, plan)
    reused = len(done)
    if done:
        total = f" of {plan.num_parts}" if plan.num_parts is not None else ""
        say(f"resuming: {len(done)}{total} parts already done in {work}")
    writer_fields = {s.name: s.field for s in specs}
    bar = tqdm(total=plan.num_items, initial=sum(info['items'] for info in done.values()),
               unit=' samples', desc=os.path.basename(dst), disable=not progress, smoothing=0.05,
               dynamic_ncols=True)
    try:
        if engine is None:
            done.update(write_parts(source, settings, plan, done, bar))
        else:
            done.update(engine.write_parts(source, settings, plan, done, bar, say))
    finally:
        bar.close()

    parts = sorted(done)
    if plan.num_parts is not None and len(parts) != plan.num_parts:  # pragma: no cover - defensive
        raise ConversionError(f"only {len(parts)} of {plan.num_parts} parts are done in {work!r}")
    skipped = [(w, r) for p in parts for w, r in done[p]['skipped']]
    folders = source.unreadable_folders()
    report = None
    if skipped or folders:
        report = os.path.abspath(skipped_report or dst + '.skipped.txt')
        _write_report(report, skipped, dst, folders)
        also = f" and {len(folders)} unreadable folder(s)" if folders else ""
        say(f"skipped {len(skipped)} unreadable sample(s){also}, listed in {report}")
    say(f"merging {len(parts)} part(s) into {dst}")
    paths = [os.path.join(work, part_name(p) + '.beton') for p in parts]
    if paths:
        num_samples = combine([(p, None) for p in paths], dst, overwrite=overwrite, page_size=page_size,
                              temp_dir=work, verb='merge')
    else:
        DatasetWriter(dst, writer_fields, page_size=page_size, progress=False,
                      overwrite=overwrite).from_indexed_dataset([])
        num_samples = 0
    shutil.rmtree(work, ignore_errors=True)
    if engine is not None:
        engine.clean_up()
    return ConversionResult(path=dst, num_samples=num_samples, num_parts=len(parts),
                            parts_reused=reused, skipped=skipped, skipped_report=report,
                            fields=[s.name for s in specs], skipped_folders=folders)
