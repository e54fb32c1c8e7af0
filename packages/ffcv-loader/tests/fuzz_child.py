"""The reading side of test_fuzz.py: a long-lived process that reads mutants of .beton files.

    python fuzz_child.py CONFIG.json

CONFIG gives the base files (``{"bases": {name: path}}``), the readers to run, the timeout
per reader, the memory bound and how many mutants to read at once. The process imports
torch, numba and the ffcv packages once, reads every base file with every reader (the
reference data, kept as digests) and says ``{"type": "ready"}`` on stdout. It then takes one
request per line on stdin, ``{"id": .., "base": .., "path": ..}``, and answers one line per
request, ``{"type": "result", "id": .., "results": {reader: outcome}}``.

Each mutant is read in a process forked from this one (imports done, numba's kernels
loaded), so a crash or a hang is the mutant's alone and costs a fork, not a new Python. The
forked process sets ``RLIMIT_DATA`` to its current data size plus the bound, then runs the
readers one after the other, saying when each starts and how it ended; when it dies (a
signal) or a reader runs past the timeout (it is killed), that reader's outcome is
``signal`` or ``hang``, and the remaining readers run in a fresh fork.

Outcomes: ``{"outcome": "ok", "same": bool, "diff": ...}``, ``{"outcome": "error", "type":
.., "message": ..}`` (a clean exception), ``{"outcome": "alloc", ...}`` (an allocation past the
bound: a MemoryError or an allocator's failure), ``{"outcome": "signal", "signal": ..}``,
``{"outcome": "hang"}``, ``{"outcome": "exit", "code": ..}`` (the process exited).
"""
import hashlib
import json
import math
import os
import re
import resource
import select
import signal
import sys
import threading
import time
import traceback

READERS = ('reader', 'loader_os', 'loader_proc', 'verify')

ALLOC_PATTERNS = re.compile(
    r"unable to allocate|can't allocate memory|cannot allocate memory|failed to allocate|"
    r"insufficient memory|out of memory|bad_alloc|can't start new thread|mmap length is greater",
    re.IGNORECASE)


# ------------------------------------------------------------------ digests and comparisons

def _digest_array(array):
    import numpy as np
    array = np.ascontiguousarray(array)
    h = hashlib.blake2b(digest_size=12)
    h.update(f'{array.dtype.str}{array.shape}'.encode())
    h.update(array.view(np.uint8).reshape(-1).data if array.dtype != object else repr(array).encode())
    return h.hexdigest()


def digest(value):
    """A short string that changes when the value does (arrays: dtype, shape and bytes)."""
    import numpy as np
    if hasattr(value, 'detach') and hasattr(value, 'numpy'):
        return 'T' + _digest_array(value.detach().cpu().numpy())
    if isinstance(value, np.ndarray):
        return 'A' + _digest_array(value)
    if isinstance(value, float):
        return 'F' + (math.copysign(1.0, value) < 0 and '-' or '+') + value.hex()
    if isinstance(value, (bool, int, str, type(None))):
        return type(value).__name__ + ':' + repr(value)
    if isinstance(value, np.generic):
        return 'G' + _digest_array(np.asarray(value))
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + '[' + ','.join(digest(v) for v in value) + ']'
    if isinstance(value, dict):
        return 'D{' + ','.join(f'{k!r}:{digest(v)}' for k, v in value.items()) + '}'
    h = hashlib.blake2b(repr(value).encode(), digest_size=12)
    return type(value).__name__ + '#' + h.hexdigest()


def compare(reference, got, unit):
    """``None`` when the two lists of per-unit digests are equal, else where they differ."""
    if len(reference) != len(got):
        return f"{len(got)} {unit}{'es' if unit.endswith('h') else 's'} instead of {len(reference)}"
    for i, (a, b) in enumerate(zip(reference, got)):
        if a != b:
            if isinstance(a, list) and len(a) == len(b):
                parts = [k for k, (x, y) in enumerate(zip(a, b)) if x != y]
                return f"{unit} {i}, output(s) {parts} differ"
            return f"{unit} {i} differs"
    return None


# ------------------------------------------------------------------ the readers

def read_reader(path):
    from ffcv_format import Reader
    reader = Reader(path)
    try:
        return [[digest(v) for v in reader[i]] for i in range(len(reader))]
    finally:
        reader.close()


def read_loader(path, os_cache, config):
    from ffcv_loader import Loader, OrderOption
    loader = Loader(path, batch_size=config['batch_size'], num_workers=config['workers'], os_cache=os_cache,
                    order=OrderOption.SEQUENTIAL, drop_last=False, seed=0)
    out = []
    try:
        for batch in loader:
            out.append([digest(x) for x in batch])   # buffers are reused: digest now
    finally:
        loader.close()
        del loader
    return out


def read_verify(path):
    from ffcv_format import verify
    summary = verify(path)
    return [[digest(summary.get('num_samples'))]]


def run_reader(name, path, config):
    if name == 'reader':
        return read_reader(path)
    if name == 'loader_os':
        return read_loader(path, True, config)
    if name == 'loader_proc':
        return read_loader(path, False, config)
    if name == 'verify':
        return read_verify(path)
    raise ValueError(name)


def is_alloc_failure(error):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MemoryError) and (type(error).__name__ == '_ArrayMemoryError' or not str(error)
                                               or ALLOC_PATTERNS.search(str(error))):
            return True
        if ALLOC_PATTERNS.search(str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


def outcome_of(name, path, config, reference):
    started = time.monotonic()
    try:
        data = run_reader(name, path, config)
    except BaseException as e:  # noqa: BLE001 - every exception is an outcome
        result = {'outcome': 'alloc' if is_alloc_failure(e) else 'error', 'type': type(e).__name__,
                  'message': str(e)[:600], 'where': _where(e)}
    else:
        if name == 'verify':
            result = {'outcome': 'ok', 'same': True}
        else:
            diff = compare(reference, data, 'batch' if name.startswith('loader') else 'sample')
            result = {'outcome': 'ok', 'same': diff is None}
            if diff:
                result['diff'] = diff
    result['seconds'] = round(time.monotonic() - started, 3)
    return result


def _where(error):
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if '/ffcv' in frame.filename:
            return f"{os.path.basename(frame.filename)}:{frame.lineno} {frame.name}"
    return f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ''


# ------------------------------------------------------------------ the forked readers

def data_size():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmData:'):
                return int(line.split()[1]) * 1024
    return 0


def set_memory_bound(extra_bytes):
    limit = data_size() + extra_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def child_main(write_fd, path, base, readers, config, references):
    """In the forked process: read ``path`` with each of ``readers``, reporting on ``write_fd``."""
    out = os.fdopen(write_fd, 'w', buffering=1)
    try:
        set_memory_bound(int(config['bound_gib'] * (1 << 30)))
        for name in readers:
            out.write(json.dumps({'start': name}) + '\n')
            result = outcome_of(name, path, config, references[base].get(name))
            out.write(json.dumps({'done': name, 'result': result}) + '\n')
        out.flush()
    finally:
        os._exit(0)


class Job:
    def __init__(self, request, readers):
        self.request = request
        self.left = list(readers)
        self.results = {}
        self.pid = None
        self.fd = None
        self.buffer = b''
        self.current = None
        self.started = None


class Zygote:
    def __init__(self, config):
        self.config = config
        self.references = {}
        self.readers = list(config.get('readers', READERS))
        self.timeout = float(config['timeout'])
        self.jobs = max(1, int(config.get('jobs', 1)))
        self.out = None
        self.active = []

    def send(self, message):
        self.out.write(json.dumps(message) + '\n')
        self.out.flush()

    # -------------------------------------------------------------- start-up

    def prepare(self):
        for name, path in self.config['bases'].items():
            reference = {}
            for reader in self.readers:
                if reader == 'verify':
                    run_reader(reader, path, self.config)
                    continue
                reference[reader] = run_reader(reader, path, self.config)
            if 'loader_os' in reference and 'loader_proc' in reference:
                if reference['loader_os'] != reference['loader_proc']:
                    raise RuntimeError(f"base {name}: the two loaders give different data")
            self.references[name] = reference
        import gc
        gc.collect()
        deadline = time.monotonic() + 10
        while threading.active_count() > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        if threading.active_count() > 1:
            raise RuntimeError(f"threads left after the reference reads: {threading.enumerate()}")

    def self_test(self):
        """In a fork, under the memory bound: a big allocation fails, torch and numba work,
        and a base file reads as in the parent."""
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            report = {}
            try:
                import numpy as np
                import torch
                from numba import njit
                set_memory_bound(int(self.config['bound_gib'] * (1 << 30)))
                report['limit_bytes'] = resource.getrlimit(resource.RLIMIT_DATA)[0]
                try:
                    np.empty(int((self.config['bound_gib'] + 1) * (1 << 30)), np.uint8)
                    report['big_numpy'] = 'allocated'
                except MemoryError as e:
                    report['big_numpy'] = 'MemoryError' if is_alloc_failure(e) else f'other: {e}'
                try:
                    torch.empty(int((self.config['bound_gib'] + 1) * (1 << 30)), dtype=torch.uint8)
                    report['big_torch'] = 'allocated'
                except Exception as e:  # noqa: BLE001
                    report['big_torch'] = 'refused' if is_alloc_failure(e) else f'other: {e}'
                report['torch'] = float(torch.arange(100, dtype=torch.float32).sum())
                report['numba'] = int(njit(lambda n: n * 2)(21))
                base, path = next(iter(self.config['bases'].items()))
                report['reads'] = {r: outcome_of(r, path, self.config, self.references[base].get(r))
                                   for r in self.readers}
            except BaseException as e:  # noqa: BLE001
                report['error'] = f'{type(e).__name__}: {e}'
            os.write(write_fd, json.dumps(report).encode())
            os._exit(0)
        os.close(write_fd)
        data = b''
        while True:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            data += chunk
        os.close(read_fd)
        os.waitpid(pid, 0)
        return json.loads(data.decode() or '{}')

    # -------------------------------------------------------------- the loop

    def fork(self, job):
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_fd)
                os.close(0)
                for fd in [self.out.fileno()] + [other.fd for other in self.active if other.fd is not None]:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                child_main(write_fd, job.request['path'], job.request['base'], list(job.left), self.config,
                           self.references)
            finally:
                os._exit(70)
        os.close(write_fd)
        job.pid, job.fd, job.buffer = pid, read_fd, b''
        job.current, job.started = None, time.monotonic()

    def handle_line(self, job, line):
        message = json.loads(line)
        if 'start' in message:
            job.current = message['start']
            job.started = time.monotonic()
        elif 'done' in message:
            job.results[message['done']] = message['result']
            if message['done'] in job.left:
                job.left.remove(message['done'])
            job.current = None

    def reap(self, job, killed_for_hang=False):
        """The forked process is gone (or was killed): record the reader it was on."""
        try:
            os.close(job.fd)
        except OSError:
            pass
        _, status = os.waitpid(job.pid, 0)
        job.pid = job.fd = None
        if job.current is not None:
            name = job.current
            if killed_for_hang:
                job.results[name] = {'outcome': 'hang', 'seconds': self.timeout}
            elif os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                job.results[name] = {'outcome': 'signal', 'signal': signal.Signals(sig).name}
            else:
                job.results[name] = {'outcome': 'exit', 'code': os.WEXITSTATUS(status)}
            job.left.remove(name)
            job.current = None
        elif job.left and not killed_for_hang:
            # died before starting the next reader: blame it (outside any reader)
            name = job.left.pop(0)
            how = (signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status)
                   else f'exit {os.WEXITSTATUS(status)}')
            job.results[name] = {'outcome': 'exit', 'code': how, 'note': 'died between readers'}

    def serve(self):
        pending = []
        active = self.active = []
        stdin_open = True
        stdin_buffer = b''
        while stdin_open or pending or active:
            while pending and len(active) < self.jobs:
                job = pending.pop(0)
                self.fork(job)
                active.append(job)
            fds = [job.fd for job in active] + ([0] if stdin_open else [])
            now = time.monotonic()
            wait = min([max(0.0, job.started + self.timeout - now) for job in active] + [1.0])
            ready, _, _ = select.select(fds, [], [], wait)
            if 0 in ready:
                chunk = os.read(0, 65536)
                if not chunk:
                    stdin_open = False
                stdin_buffer += chunk
                while b'\n' in stdin_buffer:
                    line, stdin_buffer = stdin_buffer.split(b'\n', 1)
                    if line.strip():
                        request = json.loads(line)
                        pending.append(Job(request, request.get('readers') or self.readers))
            for job in list(active):
                if job.fd in ready:
                    chunk = os.read(job.fd, 65536)
                    if chunk:
                        job.buffer += chunk
                        while b'\n' in job.buffer:
                            line, job.buffer = job.buffer.split(b'\n', 1)
                            self.handle_line(job, line)
                    else:
                        self.reap(job)
                        self.after(job, active, pending)
                        continue
                if job.pid is not None and time.monotonic() - job.started > self.timeout:
                    os.kill(job.pid, signal.SIGKILL)
                    if job.current is None and job.left:
                        job.current = job.left[0]
                    self.reap(job, killed_for_hang=True)
                    self.after(job, active, pending)

    def after(self, job, active, pending):
        active.remove(job)
        if job.left:
            pending.insert(0, job)   # the remaining readers, in a fresh fork
        else:
            self.send({'type': 'result', 'id': job.request['id'], 'results': job.results})


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    # the protocol gets the real stdout; anything printed goes to stderr
    protocol = os.dup(1)
    os.dup2(2, 1)
    zygote = Zygote(config)
    zygote.out = os.fdopen(protocol, 'w', buffering=1)
    started = time.monotonic()
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        import ffcv_format  # noqa: F401
        import ffcv_loader  # noqa: F401
        imported = time.monotonic()
        zygote.prepare()
        prepared = time.monotonic()
        report = zygote.self_test()
    except BaseException as e:  # noqa: BLE001
        zygote.send({'type': 'fatal', 'error': f'{type(e).__name__}: {e}',
                     'traceback': traceback.format_exc()})
        return 1
    zygote.send({'type': 'ready', 'self_test': report, 'import_seconds': round(imported - started, 2),
                 'reference_seconds': round(prepared - imported, 2)})
    zygote.serve()
    return 0


if __name__ == '__main__':
    sys.exit(main())
