"""The measuring harness of the benchmark suite: contenders in their own processes, timed in rounds.

A *contender* is a class in a module of ``benchmarks/contenders/`` with

    __init__(self, spec)      spec: a JSON-able dict (paths, batch size, workers, ...)
    warmup(self) -> dict      imports, builds, runs one epoch; returns at least
                              ``warmup_rate``; ideally ``import_s``, ``first_batch_s``,
                              ``rss_after_imports``, ``images_per_epoch``
    epoch(self) -> dict       one timed epoch: ``{'rate': samples/s, 'images': n, ...}``
    run_until(self, stop_file, max_seconds) -> dict
                              (optional, for :func:`gil_profiles`) epochs without a break
                              until ``stop_file`` exists: :func:`timed_until`

It runs in a fresh process of the interpreter its peer needs (ours, FFCV 1.0.2's venv,
DALI's venv): ``PYTHON benchmarks/harness.py --child MODULE:CLASS``, the spec as the first
line of its stdin. The child answers commands on stdin (``warmup``, ``epoch``, any other
method name, optionally followed by a JSON object of keyword arguments, ``finish``) with
one ``RESULT {json}`` line each. This file imports only the standard library at the top,
so any of those interpreters can run it.

:func:`run_rounds` warms every contender up, then gives each one epoch per round, one after
the other, rotating the order, while a sampler in this process records the memory of each
contender's process tree. Load from elsewhere on a shared machine then hits all of them
alike, and per-round ratios stay meaningful; figures are medians over rounds.

:func:`gil_profiles` samples contenders with ``py-spy record --gil`` for the GIL their
loader threads hold per image (the suite's ``gil`` rows).
"""
import importlib.util
import json
import os
import platform
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT_PREFIX = 'RESULT '


# --------------------------------------------------------------------------- child side

def _self_status_bytes(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def current_rss_bytes():
    return _self_status_bytes('VmRSS:')


def peak_rss_bytes():
    """This process's high-water RSS (``VmHWM``). Not getrusage's ru_maxrss: on Linux that
    survives exec, so a child would report its parent's peak at fork time."""
    return _self_status_bytes('VmHWM:')


def emit(result):
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def all_cores():
    return len(os.sched_getaffinity(0))


def load_contender(target):
    """``MODULE:CLASS`` -> the class, from ``benchmarks/contenders/MODULE.py``."""
    module_name, _, class_name = target.partition(':')
    path = os.path.join(HERE, 'contenders', module_name + '.py')
    spec = importlib.util.spec_from_file_location(f'contenders_{module_name}', path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, HERE)
    spec.loader.exec_module(module)
    return getattr(module, class_name)


def allow_ptrace():
    """Let any process of this user ptrace this one (Yama's ``PR_SET_PTRACER_ANY``), so that a
    sampler started by the parent (a sibling, not an ancestor) may attach where
    ``kernel.yama.ptrace_scope`` is 1. Harmless where Yama is absent (the call fails)."""
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        done = libc.prctl(0x59616d61, ctypes.c_ulong(-1), 0, 0, 0) == 0  # PR_SET_PTRACER, _ANY
    except (OSError, AttributeError):
        done = False
    return {'allowed': done}


def serve(target):
    """Child side: read the spec, build the contender, then run the commands sent on stdin.

    A command is a method name, optionally followed by a space and a JSON object of keyword
    arguments (``run_until {"stop_file": ...}``)."""
    spec = json.loads(sys.stdin.readline())
    contender = load_contender(target)(spec)
    for line in sys.stdin:
        command, _, arguments = line.strip().partition(' ')
        kwargs = json.loads(arguments) if arguments else {}
        if command == 'finish':
            emit({'peak_rss': peak_rss_bytes()})
            return
        if command == 'allow_ptrace':
            emit(allow_ptrace())
            continue
        if command.startswith('_') or not hasattr(contender, command):
            raise ValueError(f"unknown command {command!r} for {target}")
        emit(getattr(contender, command)(**kwargs))


def timed_epoch(loader, count=lambda batch: batch[0].shape[0]):
    """Samples per second of one pass over ``loader``, the batches left untouched."""
    start = time.perf_counter()
    n = 0
    for batch in loader:
        n += count(batch)
    return {'rate': n / (time.perf_counter() - start), 'images': n}


def timed_warmup(build, imports, count=lambda batch: batch[0].shape[0]):
    """Import ``imports``, ``build()`` the loader, take the first batch, finish the epoch."""
    t0 = time.perf_counter()
    for name in imports:
        importlib.import_module(name)
    import_s = time.perf_counter() - t0
    rss_after_imports = current_rss_bytes()
    start = time.perf_counter()
    loader = build()
    iterator = iter(loader)
    first = next(iterator)
    first_batch_s = time.perf_counter() - start
    n = count(first)
    shape = list(first[0].shape)
    dtype = str(first[0].dtype)
    for batch in iterator:
        n += count(batch)
    return loader, dict(import_s=import_s, first_batch_s=first_batch_s,
                        warmup_rate=n / (time.perf_counter() - start), images_per_epoch=n,
                        shape=shape, dtype=dtype, rss_after_imports=rss_after_imports)


def timed_until(loader, stop_file, max_seconds, count=lambda batch: batch[0].shape[0]):
    """Whole epochs over ``loader`` until ``stop_file`` exists (looked for between epochs) or
    ``max_seconds`` have passed; the ``time.monotonic()`` of every batch's arrival and the
    images delivered by then, so that the parent can count the images of any time window
    (``CLOCK_MONOTONIC`` is the same clock in every process)."""
    start = time.monotonic()
    times, images = [round(start, 5)], [0]
    n = epochs = 0
    while not os.path.exists(stop_file) and time.monotonic() - start < max_seconds:
        for batch in loader:
            n += count(batch)
            times.append(round(time.monotonic(), 5))
            images.append(n)
        epochs += 1
    return {'times': times, 'images': images, 'epochs': epochs, 'pid': os.getpid()}


# --------------------------------------------------------------------------- parent side

class TreeMemorySampler(threading.Thread):
    """Samples the summed RSS of a process and its descendants (every 50 ms) until stopped.

    :meth:`read_pss` adds up their PSS now; it costs about 10 ms of kernel time per process,
    too much while another process is timed, so it is called only between epochs.
    """

    def __init__(self, pid, interval=0.05):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self.peak_processes = 0
        self._stop_event = threading.Event()

    @staticmethod
    def _tree(pid):
        pids, todo = [], [pid]
        while todo:
            p = todo.pop()
            pids.append(p)
            try:
                for task in os.listdir(f'/proc/{p}/task'):
                    with open(f'/proc/{p}/task/{task}/children') as f:
                        todo += [int(c) for c in f.read().split()]
            except OSError:
                pass
        return pids

    @staticmethod
    def _kib(path, key):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def read_pss(self):
        pids = self._tree(self.pid)
        pss = sum(self._kib(f'/proc/{p}/smaps_rollup', 'Pss:') for p in pids) * 1024
        self.peak_pss = max(self.peak_pss, pss)
        return pss

    def run(self):
        while not self._stop_event.wait(self.interval):
            pids = self._tree(self.pid)
            rss = sum(self._kib(f'/proc/{p}/status', 'VmRSS:') for p in pids) * 1024
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_processes = max(self.peak_processes, len(pids))

    def stop(self):
        self._stop_event.set()
        self.join()


class ContenderProcess:
    """Parent side of one contender: a fresh process of ``python`` that runs commands on request."""

    def __init__(self, python, target, spec, timeout, env=None):
        self.target, self.timeout = target, timeout
        self.stderr = tempfile.TemporaryFile(mode='w+')
        command = [python, os.path.abspath(__file__), '--child', target]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, text=True, bufsize=1, cwd=HERE,
                                        env={**os.environ, **(env or {})})
        self.process.stdin.write(json.dumps(spec) + '\n')
        self.sampler = TreeMemorySampler(self.process.pid)
        self.sampler.start()
        self.error = None
        self._lines = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self):
        for line in self.process.stdout:
            if line.startswith(RESULT_PREFIX):
                self._lines.put(json.loads(line[len(RESULT_PREFIX):]))
        self._lines.put(None)

    def _fail(self, why):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.stderr.seek(0)
        lines = [line for line in self.stderr.read().strip().splitlines() if line.strip()]
        # the exception's own line is the most useful; keep a little context
        tail = ' | '.join(line.strip() for line in lines[-3:])
        self.error = f"{why}: {tail}" if tail else why
        self.sampler.stop()
        return None

    def call(self, command):
        """Send ``command``; its result (None, with ``self.error`` set, if the child failed)."""
        return self.receive() if self.send(command) else None

    def send(self, command):
        """Send ``command`` without waiting for its answer (:meth:`receive`); False if the child failed."""
        if self.error:
            return False
        try:
            self.process.stdin.write(command + '\n')
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._fail(f"exit status {self.process.wait()}")
            return False
        return True

    def receive(self):
        """The answer to the command sent last (None, with ``self.error`` set, if the child failed)."""
        if self.error:
            return None
        try:
            result = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            return self._fail(f"no answer within {self.timeout} s")
        if result is None:
            return self._fail(f"exit status {self.process.wait()}")
        return result

    def finish(self):
        result = self.call('finish')
        if result is None:
            return None
        self.process.stdin.close()
        self.process.wait(timeout=self.timeout)
        self.sampler.stop()
        self.stderr.close()
        result.update(tree_rss=self.sampler.peak_rss, tree_pss=self.sampler.peak_pss,
                      processes=self.sampler.peak_processes)
        return result

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.sampler.is_alive():
            self.sampler.stop()


class Contender:
    """What :func:`run_rounds` runs: a name, the interpreter, ``MODULE:CLASS``, its spec.

    ``unavailable`` (a reason) marks a peer that could not be set up on this machine: it is
    reported as such, never dropped. ``extra`` names more commands to call after each epoch
    (e.g. the ceiling's ``parallel``), their ``rate`` recorded under that name.
    """

    def __init__(self, name, python, target, spec, unavailable=None, extra=(), env=None):
        self.name, self.python, self.target, self.spec = name, python, target, spec
        self.unavailable, self.extra, self.env = unavailable, tuple(extra), env


def cpu_counters():
    """(wall s, busy CPU-s of the whole machine, CPU-s of this process and its waited-for children)."""
    with open('/proc/stat') as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    machine = (user + nice + system + irq + softirq + steal) / os.sysconf('SC_CLK_TCK')
    t = os.times()
    return time.perf_counter(), machine, t.user + t.system + t.children_user + t.children_system


def run_rounds(contenders, rounds, timeout=900, log=print):
    """Warm each contender up in its own process, then ``rounds`` rounds of one epoch each.

    Returns ``{name: result}``; a result has the warm-up's figures, ``rates`` (one per
    round), ``rate`` (their median), the memory figures (``peak_rss`` of the main process,
    ``tree_rss`` / ``tree_pss`` peaks of its process tree), or ``error`` (why it did not run).
    A ``'_load'`` entry tells how busy the machine was meanwhile.
    """
    results, live = {}, {}
    before = cpu_counters()
    try:
        for c in contenders:
            if c.unavailable:
                results[c.name] = {'error': c.unavailable}
                continue
            log(f"  warming up {c.name} ...")
            process = ContenderProcess(c.python, c.target, c.spec, timeout, c.env)
            warm = process.call('warmup')
            if warm is None:
                results[c.name] = {'error': process.error}
                continue
            results[c.name] = dict(warm, rates=[], **{f'{e}_rates': [] for e in c.extra})
            live[c.name] = (c, process)
        order = list(live)
        for index in range(rounds if live else 0):
            log(f"  round {index + 1}/{rounds}: " + ', '.join(order))
            for name in order:
                c, process = live[name]
                answer = process.call('epoch')
                if answer is None:
                    results[name]['error'] = process.error
                    continue
                results[name]['rates'].append(answer['rate'])
                for key, value in answer.items():
                    if key not in ('rate', 'images') and isinstance(value, (int, float)):
                        results[name].setdefault(f'{key}_all', []).append(value)
                for extra in c.extra:
                    answer = process.call(extra)
                    if answer is not None:
                        results[name][f'{extra}_rates'].append(answer['rate'])
            for name in list(live):  # between epochs, so that its cost times nobody
                if live[name][1].error:
                    del live[name]
                    order.remove(name)
                else:
                    live[name][1].sampler.read_pss()
            order = order[1:] + order[:1]
        for name, (c, process) in live.items():
            final = process.finish()
            if final is None:
                results[name]['error'] = process.error
            else:
                results[name].update(final)
        live.clear()
    finally:
        for _c, process in live.values():
            process.kill()
    wall, machine, ours = [a - b for a, b in zip(cpu_counters(), before)]
    results['_load'] = {'wall_s': wall, 'busy': machine / wall / all_cores() if wall else 0,
                        'others_cores': max(0.0, machine - ours) / wall if wall else 0}
    for name, r in results.items():
        if r.get('rates'):
            r['rate'] = statistics.median(r['rates'])
            for key in [k for k in r if k.endswith('_rates') or k.endswith('_all')]:
                if r[key]:
                    r[key.rsplit('_', 1)[0] + ('_rate' if key.endswith('_rates') else '')] = statistics.median(r[key])
    return results


def run_once(python, target, spec, timeout=900, env=None):
    """A fresh process that runs ``warmup`` only (e.g. the time to the first batch)."""
    process = ContenderProcess(python, target, spec, timeout, env)
    result = process.call('warmup')
    if result is None:
        return {'error': process.error}
    final = process.finish()
    return dict(result, **(final or {}))


# --------------------------------------------------------------------------- GIL sampling

PTRACE_HINT = ("py-spy must be allowed to ptrace the contender: run as root, or with CAP_SYS_PTRACE "
               "(docker run --cap-add SYS_PTRACE), or with kernel.yama.ptrace_scope <= 1")


def poisson_interval(k, confidence=0.95):
    """The exact (Garwood) interval of a Poisson mean from ``k`` counted events (above 100
    events, its Wilson-Hilferty approximation, within 0.1%). ``confidence``: 0.95 only above
    100 events."""
    import math
    if k > 100:
        z = 1.959963984540054

        def wh(n, sign):
            return n * (1 - 1 / (9 * n) + sign * z / (3 * math.sqrt(n))) ** 3

        return wh(k, -1), wh(k + 1, +1)
    alpha = (1 - confidence) / 2

    def cdf(n, lam):  # P(X <= n) for X ~ Poisson(lam)
        term = total = math.exp(-lam)
        for i in range(1, n + 1):
            term *= lam / i
            total += term
        return total

    def solve(f, target, lo=0.0, hi=400.0):  # f decreasing in lam
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) > target else (lo, mid)
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else solve(lambda lam: cdf(k - 1, lam), 1 - alpha)
    return lower, solve(lambda lam: cdf(k, lam), alpha)


def parse_pyspy_raw(path, pid):
    """Sample counts of a ``py-spy record --gil --threads --format raw`` file, per thread:
    ``{'main': n, 'loader': n, 'unknown': n, 'by_thread': {name: n}, 'hot': [[leaf frame, n], ...]}``.
    The main thread is the one whose id is the process id (Linux); every other Python thread
    in a contender's process is its loader's (numba's and torch's threads have no Python state)."""
    import collections
    counts = collections.Counter()
    by_thread = collections.Counter()
    hot = collections.Counter()
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip('\n').rpartition(' ')
            if not stack or not n.isdigit():
                continue
            n = int(n)
            frames = stack.split(';')
            m = re.match(r'thread \((0x[0-9A-Fa-f]+|\d+)\)(?:: (.*))?$', frames[0])
            if not m:
                counts['unknown'] += n
                continue
            tid = int(m.group(1), 0)
            kind = 'main' if tid == pid else 'loader'
            counts[kind] += n
            by_thread[re.sub(r'\d+$', '*', m.group(2) or ('main' if kind == 'main' else 'unnamed'))] += n
            if kind == 'loader' and len(frames) > 1:
                hot[frames[-1]] += n
    return {'main': counts['main'], 'loader': counts['loader'], 'unknown': counts['unknown'],
            'by_thread': dict(by_thread), 'hot': [[frame, n] for frame, n in hot.most_common(8)]}


def _images_between(times, images, t0, t1):
    """Images delivered in ``[t0, t1]``, the cumulative count interpolated between batch arrivals."""
    import bisect

    def at(t):
        i = bisect.bisect_right(times, t)
        if i == 0:
            return images[0]
        if i == len(times):
            return images[-1]
        ta, tb = times[i - 1], times[i]
        return images[i - 1] + (images[i] - images[i - 1]) * (t - ta) / (tb - ta) if tb > ta else images[i]

    return at(t1) - at(t0)


def _process_cpu_s(pid):
    """CPU seconds (user + system, all threads) of a live process; 0 if it is gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rpartition(')')[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    except (OSError, IndexError, ValueError):
        return 0.0


def _gil_window(process, seconds, rate, pyspy, sampled, nonblocking, tmp, settle=3.0):
    """One window of ``seconds`` in which the contender runs epochs, sampled by py-spy or not:
    images, rate, and the cores used meanwhile by the contender, py-spy and other processes."""
    stop_file = os.path.join(tmp, f'stop-{time.monotonic_ns()}')
    out = os.path.join(tmp, f'pyspy-{time.monotonic_ns()}.txt')
    if not process.send('run_until ' + json.dumps({'stop_file': stop_file, 'max_seconds': 4 * seconds + 180})):
        return {'error': process.error}
    pid = process.process.pid
    spy, said, result = None, [], {}
    try:
        # the first seconds of a run after a pause are slower (10-25% here, whatever the cause):
        # every window, sampled or not, starts about this long after the run (py-spy takes
        # 0.3-0.5 s to attach)
        time.sleep(max(0.0, settle - 0.4) if sampled else settle)
        if sampled:
            # --idle: without it py-spy drops a GIL holder whose innermost frame is threading.py's
            # wait (a worker taking its next chunk off the queue), which does hold the GIL
            command = [pyspy, 'record', '--pid', str(pid), '--gil', '--idle', '--threads',
                       '--rate', str(rate), '--format', 'raw', '--output', out] + (['--nonblocking'] * nonblocking)
            attach = time.monotonic()
            try:
                spy = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                       bufsize=1)
            except OSError as e:
                return {'error': f"py-spy did not start: {e}"}
            lines = queue.Queue()

            def read():
                for line in spy.stdout:
                    said.append(line.strip())
                    lines.put(line)
                lines.put(None)

            threading.Thread(target=read, daemon=True).start()
            deadline = time.monotonic() + 120
            while True:
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    line = None
                if line is None or 'Sampling process' in line:
                    break
            if line is None:
                tail = ' | '.join(s for s in said if s and not s.startswith(('Stack backtrace', '0:', '1:')))[-400:]
                permission = any(w in ' '.join(said).lower() for w in ('permission', 'not permitted', 'ptrace'))
                return {'error': f"py-spy did not sample: {tail or 'no output within 120 s'}"
                                 + (f" ({PTRACE_HINT})" if permission else '')}
        _, busy0, _ = cpu_counters()
        cpu0, spy0 = _process_cpu_s(pid), _process_cpu_s(spy.pid) if spy else 0.0
        t0 = time.monotonic()
        if spy:
            result['attach_s'] = t0 - attach
        time.sleep(seconds)
        t1 = time.monotonic()
        _, busy1, _ = cpu_counters()
        cpu1, spy1 = _process_cpu_s(pid), _process_cpu_s(spy.pid) if spy else 0.0
        wall = t1 - t0
        result.update(contender_cores=(cpu1 - cpu0) / wall, pyspy_cores=(spy1 - spy0) / wall,
                      others_cores=max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - (spy1 - spy0)) / wall)
        if spy:
            spy.send_signal(2)  # SIGINT: py-spy stops and writes its file
            try:
                spy.wait(timeout=120)
            except subprocess.TimeoutExpired:
                return {'error': "py-spy did not stop within 120 s of SIGINT"}
            if not os.path.exists(out):
                return {'error': f"py-spy wrote nothing (exit status {spy.returncode}): {' | '.join(said)[-400:]}"}
            result['samples'] = parse_pyspy_raw(out, pid)
            result['pyspy_said'] = [s for s in said if s and ('Samples:' in s or 'behind' in s or 'rror' in s)]
            errors = [int(m) for s in said for m in re.findall(r'Errors: (\d+)', s)]
            result['pyspy_errors'] = errors[-1] if errors else 0
    finally:
        open(stop_file, 'w').close()
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
    answer = process.receive()
    os.remove(stop_file)
    if answer is None:
        return {'error': process.error}
    times, images = answer['times'], answer['images']
    if not (times[0] <= t0 and t1 <= times[-1]):
        return {'error': f"the contender's epochs ({times[0]:.2f}-{times[-1]:.2f}) did not cover the window "
                         f"({t0:.2f}-{t1:.2f})"}
    n = _images_between(times, images, t0, t1)
    return dict(result, window_s=wall, images=n, rate=n / wall)


def gil_profiles(contenders, seconds=5.0, sampled_windows=2, rate=200, timeout=900, pyspy=None, nonblocking=True,
                 log=print):
    """How long the loader's threads hold the GIL per image, sampled with ``py-spy record --gil``.

    ``contenders``: ``(name, python, target, spec)`` tuples, e.g. ours and the baseline on one
    workload. Each runs in a fresh process, warmed up with one epoch; then, in
    ``sampled_windows`` rounds (the contenders one after the other, the order rotating, as in
    :func:`run_rounds`, so that load from elsewhere hits them alike), each contender runs
    epochs without a break (``run_until``) through two windows of ``seconds``: one unsampled,
    one sampled by ``py-spy record --gil --idle --threads --nonblocking --rate RATE --format
    raw`` (py-spy attached to the running process, started and stopped, with SIGINT, by this
    process; the sampled window first in every other round).

    py-spy records a sample only when some thread holds the GIL, naming that thread; its
    sampling times are a Poisson process at ``rate`` per second, so a thread's GIL-held seconds
    are its samples / ``rate``, and the count is Poisson (the 95% interval is exact). The
    images of a window are counted from the contender's batch arrival times. The unsampled
    windows give the rate without py-spy: py-spy's cost is the sampled windows' rate against
    theirs. Each window also records the cores used by the contender, py-spy and the
    machine's other processes (a thread preempted while it holds the GIL holds it longer: load
    from elsewhere inflates the figure).

    ``nonblocking``: py-spy reads the process's memory while it runs. Its default mode
    (``nonblocking=False``) stops every thread with ptrace at each sample, which changes what
    is measured: on this 2-core machine, sampled in both modes by turns, the loader threads
    held the GIL 1.3-2.8x as long per image in the default mode and the main thread 4-20x as
    long (probably: every ptrace stop interrupts a thread's wait on a lock, and Python retakes
    the GIL to run signal handlers before waiting again). A sample py-spy could not read
    (``Errors:``; in the non-blocking mode, mostly the GIL holder's stack changing under it)
    is counted in ``pyspy_errors``, not in any thread.

    Returns ``{name: result}``, a result with ``error`` (why not) where it could not be measured.
    """
    pyspy = pyspy or shutil.which('py-spy')
    if not pyspy or not os.path.exists(pyspy):
        why = f"py-spy not found ({pyspy or 'not on PATH'}; pip install py-spy, or give --py-spy)"
        return {name: {'error': why} for name, *_ in contenders}
    results, live = {}, {}
    tmp = tempfile.mkdtemp(prefix='ffcv-gil-')
    try:
        for name, python, target, spec in contenders:
            log(f"  warming up {name} ...")
            process = ContenderProcess(python, target, spec, timeout)
            warm = process.call('warmup')
            if warm is None:
                results[name] = {'error': process.error}
                process.kill()
                continue
            process.call('allow_ptrace')
            live[name] = (process, warm, [], [])
        order = list(live)
        for index in range(sampled_windows):
            log(f"  round {index + 1}/{sampled_windows}: " + ', '.join(order))
            for name in list(order):
                process, warm, plain, spied = live[name]
                for sampled in ((False, True) if index % 2 == 0 else (True, False)):
                    window = _gil_window(process, seconds, rate, pyspy, sampled, nonblocking, tmp)
                    if 'error' in window:
                        results[name] = {'error': window['error'], 'warmup_rate': warm.get('warmup_rate')}
                        process.kill()
                        del live[name]
                        order.remove(name)
                        break
                    (spied if sampled else plain).append(window)
            order = order[1:] + order[:1]
        for name, (process, warm, plain, spied) in live.items():
            process.finish()
            results[name] = _gil_summary(warm, plain, spied, rate, nonblocking)
    finally:
        for process, *_ in live.values():
            process.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def _gil_summary(warm, plain, spied, rate, nonblocking):
    """One contender's figures from its unsampled (``plain``) and sampled (``spied``) windows."""
    loader = sum(w['samples']['loader'] for w in spied)
    main = sum(w['samples']['main'] for w in spied)
    unknown = sum(w['samples']['unknown'] for w in spied)
    by_thread, hot = {}, {}
    for w in spied:
        for name, n in w['samples']['by_thread'].items():
            by_thread[name] = by_thread.get(name, 0) + n
        for frame, n in w['samples']['hot']:
            hot[frame] = hot.get(frame, 0) + n
    images = sum(w['images'] for w in spied)
    window_s = sum(w['window_s'] for w in spied)
    rate_plain = sum(w['images'] for w in plain) / sum(w['window_s'] for w in plain)
    rate_spied = images / window_s
    lo, hi = poisson_interval(loader)
    per_image = loader / rate / images if images else None

    def mean(key, windows):
        return statistics.mean(w[key] for w in windows)

    return {
        'warmup_rate': warm.get('warmup_rate'), 'mode': 'nonblocking' if nonblocking else 'blocking',
        'gil_us_per_image_windows': [w['samples']['loader'] / rate / w['images'] * 1e6 if w['images'] else None
                                     for w in spied],
        'sampling_rate': rate, 'windows': len(spied), 'window_s': window_s, 'images': images,
        'rates_unsampled': [w['rate'] for w in plain], 'rates_sampled': [w['rate'] for w in spied],
        'rate_unsampled': rate_plain, 'rate_sampled': rate_spied, 'slowdown': 1 - rate_spied / rate_plain,
        'contender_cores': mean('contender_cores', spied), 'contender_cores_unsampled': mean('contender_cores', plain),
        'pyspy_cores': mean('pyspy_cores', spied), 'others_cores': mean('others_cores', spied + plain),
        'samples': loader + main + unknown, 'expected_samples': rate * window_s,
        'loader_samples': loader, 'main_samples': main, 'unknown_samples': unknown,
        'by_thread': by_thread, 'hot': sorted(hot.items(), key=lambda kv: -kv[1])[:8],
        'pyspy_said': [s for w in spied for s in w['pyspy_said']],
        'pyspy_errors': sum(w['pyspy_errors'] for w in spied),
        'loader_gil_s': loader / rate, 'loader_gil_share': loader / rate / window_s,
        'gil_us_per_image': per_image * 1e6 if per_image is not None else None,
        'gil_us_per_image_95': [lo / rate / images * 1e6, hi / rate / images * 1e6] if images else None,
        'main_gil_share': main / rate / window_s,
        'main_us_per_image': main / rate / images * 1e6 if images else None,
        'ceiling_rate': 1 / per_image if per_image else None,
    }


def cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or '?'


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--child':
        serve(sys.argv[2])
    else:
        sys.exit("harness.py is run by benchmarks/suite.py (--child MODULE:CLASS, the spec on stdin)")
