"""The measuring harness of the benchmark suite: contenders in their own processes, timed in rounds.

A *contender* is a class in a module of ``benchmarks/contenders/`` with

    __init__(self, spec)      spec: a JSON-able dict (paths, batch size, workers, ...)
    warmup(self) -> dict      imports, builds, runs one epoch; returns at least
                              ``warmup_rate``; ideally ``import_s``, ``first_batch_s``,
                              ``rss_after_imports``, ``images_per_epoch``
    epoch(self) -> dict       one timed epoch: ``{'rate': samples/s, 'images': n, ...}``

It runs in a fresh process of the interpreter its peer needs (ours, FFCV 1.0.2's venv,
DALI's venv): ``PYTHON benchmarks/harness.py --child MODULE:CLASS``, the spec as the first
line of its stdin. The child answers commands on stdin (``warmup``, ``epoch``, any other method name, ``finish``) with
one ``RESULT {json}`` line each. This file imports only the standard library at the top,
so any of those interpreters can run it.

:func:`run_rounds` warms every contender up, then gives each one epoch per round, one after
the other, rotating the order, while a sampler in this process records the memory of each
contender's process tree. Load from elsewhere on a shared machine then hits all of them
alike, and per-round ratios stay meaningful; figures are medians over rounds.
"""
import importlib.util
import json
import os
import platform
import queue
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


def serve(target):
    """Child side: read the spec, build the contender, then run the commands sent on stdin."""
    spec = json.loads(sys.stdin.readline())
    contender = load_contender(target)(spec)
    for line in sys.stdin:
        command = line.strip()
        if command == 'finish':
            emit({'peak_rss': peak_rss_bytes()})
            return
        if command.startswith('_') or not hasattr(contender, command):
            raise ValueError(f"unknown command {command!r} for {target}")
        emit(getattr(contender, command)())


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
        if self.error:
            return None
        try:
            self.process.stdin.write(command + '\n')
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._fail(f"exit status {self.process.wait()}")
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
