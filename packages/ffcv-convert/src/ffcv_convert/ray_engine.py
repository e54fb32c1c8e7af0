"""The Ray engine of :func:`~ffcv_convert.convert`: the parts of a conversion as Ray tasks.

    ffcv convert s3://bucket/train train.beton --engine ray --address 10.0.0.5:6379
    convert('s3://bucket/train', 'train.beton', engine='ray', ray_address='10.0.0.5:6379')

This machine (the *driver*) prepares the conversion as the local engine does: it lists
the source, chooses the fields, plans the parts, and opens ``DST.parts/`` (its
``conversion.json`` and lock). It then sends the source (with its listing, so every task
sees the same items) to the cluster once, and submits one task per part not finished yet.
Each task reads its part's items itself (through fsspec, as the local engine does) and
prepares and writes the part with the local engine's own code
(:func:`~ffcv_convert.conversion.write_parts`): the same part, byte for byte. The driver
counts parts as they finish on the same progress bar, then merges them into ``DST`` as
the local engine does, so the output is the local engine's, byte for byte.

Where parts go:

- by default into ``DST.parts/`` itself: on a cluster of several machines it must be on a
  filesystem every node mounts at the same path (NFS, a cluster filesystem); a task on a
  node that does not see it stops with an error saying so;
- with ``parts_url`` onto object storage (:mod:`ffcv_convert.remote_parts`): a task writes
  its part on its own node's disk (the temporary folder, ``TMPDIR``), then uploads it; the
  driver downloads each part into ``DST.parts/`` as it finishes.

Resuming and errors are the local engine's: a part counts only once complete, running
the same command again converts only the missing parts (the parts are the same whichever
engine made them), and a bad sample stops the conversion with its path, or is skipped and
listed with ``on_error='skip'``. On the first failure the driver cancels the tasks still
running; finished parts are kept. Each worker process unpickles the source once and keeps
it for its next tasks.
"""
import contextlib
import dataclasses
import logging
import os
import socket
import tempfile

from .conversion import STATE_FILE, PartPlan, PartSettings, part_name, write_parts
from .errors import ConversionError

__all__ = ['RayEngine', 'import_ray', 'check_reachable', 'RAY_EXTRA']

#: what to install for ``engine='ray'``
RAY_EXTRA = "pip install 'ffcv-convert[ray]'"
#: how long the driver waits for finished parts before it updates the progress bar anyway
_WAIT_SECONDS = 1.0


def import_ray():
    """The ``ray`` module, or an ImportError that says which extra to install."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"engine='ray' (--engine ray) needs Ray, which is not installed ({e}); "
                          f"{RAY_EXTRA}") from None
    return ray


def check_reachable(address: str | None, timeout: float = 10.0) -> None:
    """Raise ConnectionError unless ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``; None,
    ``auto`` and ``local`` are left to Ray) accepts a TCP connection within ``timeout``
    seconds: Ray's own attempts to reach a cluster that is not there go on for minutes,
    deaf to Ctrl-C."""
    if not address or address in ('auto', 'local'):
        return
    host, _, port = address.split('://', 1)[-1].rpartition(':')
    if not port.isdigit():
        return  # not HOST:PORT: Ray says what is wrong with it
    try:
        socket.create_connection((host.strip('[]'), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one "
                              "(ray start --head) or give its address (--address, ray_address=)") from None


class RayEngine:
    """Converts the missing parts of a conversion as Ray tasks (see the module documentation).

    ``address``: the cluster (``HOST:PORT`` or ``ray://HOST:PORT``; default: ``$RAY_ADDRESS``,
    else the cluster ``ray start`` started on this machine, else a new Ray on this
    machine). If this process is connected to Ray already, that connection is used.
    ``parts_url``: object storage the tasks upload parts to (default: ``DST.parts/``).
    """

    def __init__(self, address: str | None = None, *, parts_url: str | None = None,
                 parts_storage_options: dict | None = None):
        self.ray = import_ray()
        self.address = address
        if not self.ray.is_initialized():  # before the source is listed, which may take long
            check_reachable(address if address is not None else os.environ.get('RAY_ADDRESS'))
        self.remote_parts = None
        if parts_url is not None:
            from .remote_parts import RemotePartStore
            self.remote_parts = RemotePartStore(parts_url, parts_storage_options)
        elif parts_storage_options is not None:
            raise ValueError("parts_storage_options is for parts_url "
                             "(--parts-storage-option for --parts-url)")

    # ------------------------------------------------------------------ before converting

    def check(self, source, plan: PartPlan, specs) -> None:
        """Refuse what the tasks could not convert as the local engine would."""
        if plan.kind == 'chunks':
            raise ValueError(f"engine='ray' converts parts independently, and {source!r} is an iterable "
                             "whose parts are known only by reading it in order: use the local engine, or "
                             "a map-style dataset (__len__ and __getitem__)")
        if plan.kind == 'streams' and any(spec.is_image and spec.field.write_mode == 'proportion'
                                          for spec in specs):
            raise ValueError("engine='ray' cannot convert WebDataset shards with write_mode='proportion': "
                             "which images are compressed depends on each sample's position in the whole "
                             "source, unknown to a task reading one shard; use the local engine or "
                             "another write mode")

    def open(self, work: str, state: dict, plan: PartPlan, restart: bool, say) -> None:
        """With ``parts_url``: check the conversion stored there and download its finished
        parts that ``work`` lacks (called with the work folder's lock held)."""
        if self.remote_parts is None:
            return
        self.remote_parts.open(state, restart)
        finished = [p for p in self.remote_parts.finished()
                    if plan.num_parts is None or p < plan.num_parts]
        missing = [p for p in finished if not os.path.exists(os.path.join(work, part_name(p) + '.beton'))]
        if missing:
            say(f"downloading {len(missing)} finished part(s) from {self.remote_parts.url}")
            for part in missing:
                self.remote_parts.download(part, work)

    # ------------------------------------------------------------------ converting

    def _connect(self):
        """Connect to the cluster; True if this call did (and must disconnect)."""
        ray = self.ray
        if ray.is_initialized():
            return False
        ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
        return True

    def write_parts(self, source, settings: PartSettings, plan: PartPlan, done: dict, bar, say) -> dict:
        """Convert the parts of ``plan`` not in ``done`` as Ray tasks; ``{part: info}`` of
        those written, the bar advanced by each part's items as it finishes."""
        ray = self.ray
        todo = [part for part in range(plan.num_parts) if part not in done]
        if not todo:
            return {}
        connected = self._connect()
        pending = {}
        try:
            try:
                source_ref = ray.put(source)
            except Exception as e:  # pickling: a dataset holding a lock, a file, a generator...
                raise ConversionError(f"engine='ray' sends the source to the cluster, and {source!r} cannot "
                                      f"be pickled ({type(e).__name__}: {e}); use the local engine") from e
            task = ray.remote(_convert_part).options(
                num_cpus=settings.workers, max_retries=3, retry_exceptions=False,
                name=f"ffcv-convert {os.path.basename(settings.work)}")
            # the reference inside a list: the task fetches it itself, once per worker process
            pending = {task.remote([source_ref], settings, part, self.remote_parts): part for part in todo}
            cpus = ray.cluster_resources().get('CPU', 0)
            bar.clear()  # the line goes above the bar
            say(f"converting {len(todo)} part(s) as Ray tasks ({settings.workers} CPU each) on a cluster "
                f"of {cpus:g} CPUs")
            bar.refresh()
            written = {}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=_WAIT_SECONDS)
                for ref in ready:
                    part = pending.pop(ref)
                    info = self._result(ref, part)
                    if self.remote_parts is not None:
                        self.remote_parts.download(part, settings.work)
                    written[part] = info
                    bar.update(info['items'])
            return written
        finally:
            for ref in pending:  # a failure, or Ctrl-C: finished parts are kept, the rest stop
                with contextlib.suppress(Exception):  # the cluster may be gone: the first error tells
                    ray.cancel(ref)
            if connected:
                ray.shutdown()

    def _result(self, ref, part):
        """The info of a finished part, or the task's error raised as the local engine raises it."""
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as error:
            cause = error.cause
            if not isinstance(cause, ConversionError) and hasattr(cause, 'add_note'):  # Python 3.11+
                # a bug, a storage error on a node: say where it happened
                cause.add_note(f"(in the Ray task converting part {part}; its traceback:)\n"
                               f"{error.traceback_str}")
            raise cause from None
        except ray.exceptions.RayError as error:  # the worker or its node died, and retries did not help
            raise ConversionError(f"the Ray task converting part {part} failed ({type(error).__name__}: "
                                  f"{' '.join(str(error).split())[:300]}); finished parts are kept: run the "
                                  "same conversion again") from error

    def clean_up(self) -> None:
        """Remove the parts uploaded to ``parts_url`` (the output is written)."""
        if self.remote_parts is not None:
            self.remote_parts.remove()


# ---------------------------------------------------------------------- on the workers

#: (object id, source) of the conversion this worker process last worked for
_cached_source = (None, None)


def _source_from(boxed_ref):
    """The source of the conversion whose object reference is ``boxed_ref[0]``, unpickled
    once per worker process (a listing of a million files takes a second to unpickle)."""
    global _cached_source
    import ray
    ref = boxed_ref[0]
    if _cached_source[0] != ref.hex():
        _cached_source = (None, None)  # the previous conversion's source is freed first
        _cached_source = (ref.hex(), ray.get(ref))
    return _cached_source[1]


def _convert_part(boxed_source_ref, settings: PartSettings, part: int, remote_parts) -> dict:
    """The Ray task: convert part ``part`` and publish it; returns its info (item count,
    skipped samples)."""
    source = _source_from(boxed_source_ref)
    plan = PartPlan(source, settings.part_size)
    if remote_parts is None:
        if not os.path.isfile(os.path.join(settings.work, STATE_FILE)):
            import socket
            raise ConversionError(
                f"the work folder {settings.work} is not visible on the Ray node {socket.gethostname()}: "
                "with engine='ray' the destination must be on a filesystem every node mounts at the same "
                "path, or the parts must go to object storage (parts_url=, --parts-url s3://...)")
        return write_parts(source, settings, plan, {}, parts=[part])[part]
    with tempfile.TemporaryDirectory(prefix='ffcv-part-') as folder:
        info = write_parts(source, dataclasses.replace(settings, work=folder), plan, {}, parts=[part])[part]
        remote_parts.upload(folder, part)
    return info
