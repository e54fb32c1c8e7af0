"""Finished parts on object storage, for Ray tasks on machines that share no filesystem.

With ``parts_url`` (``--parts-url s3://bucket/prefix``), each Ray task writes its part on
its own machine's disk, then uploads ``part-N.json`` and ``part-N.beton`` to the URL, in
that order; the driver downloads each part into ``DST.parts/`` as it finishes, and merges
from there as usual. A part counts as finished once its ``.beton`` is there, so it is
uploaded last, and on object stores (``s3://``, ``gs://``, ``az://``...) an object appears
only once completely uploaded; other filesystems get the file under a temporary name,
renamed when complete. The URL also holds ``conversion.json``, checked like the one in
``DST.parts/``: a conversion resumed from another machine (whose ``DST.parts/`` is empty)
still refuses parts made with other settings. It is removed once the output is written.
"""
import json
import os
import re

from ffcv_format.atomic import write_text_atomically

from .conversion import STATE_FILE, other_conversion_error, part_name
from .errors import ConversionError
from .sources import url_to_fs

__all__ = ['RemotePartStore']

#: protocols whose objects appear only once completely written (no temporary name needed)
ATOMIC_PUT_PROTOCOLS = ('s3', 's3a', 'gs', 'gcs', 'az', 'abfs', 'abfss', 'oss', 'r2')
_PART = re.compile(r'^part-(\d+)\.beton$')


class RemotePartStore:
    """The finished parts of one conversion under ``url`` (a folder of an fsspec filesystem).

    >>> store = RemotePartStore('s3://bucket/tmp/train-parts')        # doctest: +SKIP
    >>> store.finished()                                                # doctest: +SKIP
    [0, 1, 5]

    Picklable (the Ray engine sends it to its tasks, which call :meth:`upload`).
    """

    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = os.fspath(url).rstrip('/')
        self.storage_options = dict(storage_options or {})
        self.fs, self.path = url_to_fs(self.url, self.storage_options)
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.atomic_put = protocol in ATOMIC_PUT_PROTOCOLS

    def _location(self, name):
        return f"{self.path}/{name}"

    def _names(self):
        self.fs.invalidate_cache(self.path)
        try:
            return {entry.rstrip('/').rsplit('/', 1)[-1] for entry in self.fs.ls(self.path, detail=False)}
        except FileNotFoundError:
            return set()

    def finished(self) -> list[int]:
        """The parts whose ``.beton`` (uploaded after its ``.json``) is there, in order."""
        names = self._names()
        parts = []
        for name in names:
            match = _PART.match(name)
            if match and f"{name[:-len('.beton')]}.json" in names:
                parts.append(int(match.group(1)))
        return sorted(parts)

    def open(self, state: dict, restart: bool) -> None:
        """Check the conversion the URL holds parts of (refused if it has other settings, or
        discarded with ``restart``) and record ``state`` there."""
        if restart:
            self.remove()
        state_path = self._location(STATE_FILE)
        if self.finished():
            try:
                old = json.loads(self.fs.cat_file(state_path))
            except (OSError, ValueError):
                old = None
            if old != state:
                raise other_conversion_error(self.url, old, state)
        self.fs.makedirs(self.path, exist_ok=True)
        self.fs.pipe_file(state_path, json.dumps(state, indent=1, sort_keys=True).encode('utf-8'))

    def _put(self, local, name):
        target = self._location(name)
        if self.atomic_put:
            self.fs.put_file(local, target)
        else:
            self.fs.put_file(local, target + '.tmp')
            self.fs.mv(target + '.tmp', target)

    def upload(self, folder: str, part: int) -> None:
        """Upload part ``part`` from the local ``folder`` it was written into: its ``.json``,
        then its ``.beton`` (which makes it count as finished)."""
        stem = part_name(part)
        self._put(os.path.join(folder, stem + '.json'), stem + '.json')
        self._put(os.path.join(folder, stem + '.beton'), stem + '.beton')

    def download(self, part: int, work: str) -> None:
        """Copy part ``part`` into the local work folder ``work``, as the local engine writes
        parts there (the ``.json``, then the ``.beton`` under its name once complete)."""
        stem = part_name(part)
        self.fs.invalidate_cache(self.path)  # listed before the part was uploaded
        try:
            info = self.fs.cat_file(self._location(stem + '.json')).decode('utf-8')
            write_text_atomically(os.path.join(work, stem + '.json'), info)
            partial = os.path.join(work, stem + '.beton.download')
            self.fs.get_file(self._location(stem + '.beton'), partial)
        except OSError as e:
            raise ConversionError(f"cannot download part {part} from {self.url}: {type(e).__name__}: "
                                  f"{e}") from e
        os.replace(partial, os.path.join(work, stem + '.beton'))

    def remove(self) -> None:
        """Remove the parts and ``conversion.json`` (the whole folder under the URL)."""
        try:
            self.fs.rm(self.path, recursive=True)
        except FileNotFoundError:
            pass
        self.fs.invalidate_cache(self.path)

    def __repr__(self):
        return f"RemotePartStore({self.url!r})"
