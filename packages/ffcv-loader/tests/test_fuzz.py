"""Mutation fuzz test of the read path: no damaged file crashes, hangs, over-allocates or
silently gives other data.

Small valid files, one per field type (``ffcv_format.mutations.write_base_files``), are
mutated (``ffcv_format.mutations.mutations``: edits of the header, the field descriptors, the
metadata, the allocation table, truncations and random byte flips, from a fixed seed). A
sample of the mutants, spread over every family of edit of every file, is read by four
readers in a child process (``fuzz_child.py``):

- ``reader``: ``Reader(path)`` then ``reader[i]`` for every sample;
- ``loader_os`` / ``loader_proc``: one epoch of ``Loader`` with ``os_cache=True`` / ``False``
  (default pipelines, sequential order, ``drop_last=False``, batches of 8, 2 workers);
- ``verify``: ``ffcv_format.verify(path)``.

A mutant fails when a reader dies (a signal), hangs (``FFCV_FUZZ_TIMEOUT`` seconds, 10 by
default), allocates past the bound (``FFCV_FUZZ_BOUND_GIB`` GiB above what the process had,
3 by default) or exits; when a reader gives other data than the unmutated file without
raising, for a 'structure' mutant; and when ``verify`` passes a 'structure' mutant that
another reader fails on or reads differently. A clean exception is always fine, and so is
equal data.

Environment:

- ``FFCV_FUZZ_MUTANTS``: how many mutants (400 by default, the CI run: every family of edit of
  every file once, then more);
- ``FFCV_FUZZ_SEED``: the seed of the mutations and of the sample (0);
- ``FFCV_FUZZ_ONLY``: a part of ``base:mutation name`` (or a regular expression on it): run
  every mutant that matches (from the whole list, not only the sample), e.g. to reproduce
  one failure: ``FFCV_FUZZ_ONLY='rgb_raw:meta[s=0].image.data_ptr=2^56'``;
- ``FFCV_FUZZ_SAVE``: a folder: write each failing mutant there (``base__name.beton``), with
  ``failures.json`` describing them;
- ``FFCV_FUZZ_JOBS``: mutants read at once (2);
- ``FFCV_FUZZ_REPORT``: a file to write every outcome to (JSON).
"""
import collections
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
from ffcv_format.mutations import PAYLOAD, STRUCTURE, mutations, select, write_base_files

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fuzz_child.py')
READERS = ('reader', 'loader_os', 'loader_proc', 'verify')
BAD_OUTCOMES = ('signal', 'hang', 'alloc', 'exit')


def _env(name, default, kind=str):
    value = os.environ.get(name, '').strip()
    return kind(value) if value else default


SETTINGS = dict(
    mutants=_env('FFCV_FUZZ_MUTANTS', 400, int),
    seed=_env('FFCV_FUZZ_SEED', 0, int),
    only=_env('FFCV_FUZZ_ONLY', None),
    save=_env('FFCV_FUZZ_SAVE', None),
    jobs=_env('FFCV_FUZZ_JOBS', 2, int),
    timeout=_env('FFCV_FUZZ_TIMEOUT', 10.0, float),
    bound_gib=_env('FFCV_FUZZ_BOUND_GIB', 3.0, float),
    report=_env('FFCV_FUZZ_REPORT', None),
)


@pytest.fixture(scope='module')
def bases(tmp_path_factory):
    folder = tmp_path_factory.mktemp('fuzz_bases')
    paths = write_base_files(str(folder), seed=SETTINGS['seed'])
    return {name: (path, mutations(path, seed=SETTINGS['seed'])) for name, path in paths.items()}


def _work_dir(tmp_path):
    """Where mutants are written: memory (/dev/shm) when there is some."""
    if os.path.isdir('/dev/shm') and os.access('/dev/shm', os.W_OK):
        return tempfile.mkdtemp(prefix='ffcv-fuzz-', dir='/dev/shm')
    return tempfile.mkdtemp(prefix='ffcv-fuzz-', dir=str(tmp_path))


# ------------------------------------------------------------------ the child process

class Child:
    """The long-lived reading process (fuzz_child.py), restarted when it dies or stalls."""

    def __init__(self, config_path, log_path):
        self.config_path, self.log_path = config_path, log_path
        self.proc = None
        self.buffer = b''
        self.ready = None
        self.starts = 0

    def start(self):
        self.close()
        self.starts += 1
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen([sys.executable, CHILD, self.config_path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log, close_fds=True)
        log.close()
        self.buffer = b''
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        message = self.read(timeout=600)
        if message is None or message.get('type') != 'ready':
            raise RuntimeError(f"the fuzz child did not start: {message}; its log: {self.tail()}")
        self.ready = message
        return message

    def send(self, message):
        self.proc.stdin.write((json.dumps(message) + '\n').encode())
        self.proc.stdin.flush()

    def read(self, timeout):
        """The next message, or None when the child ended or said nothing for ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b'\n', 1)
        return json.loads(line)

    def tail(self, lines=30):
        try:
            with open(self.log_path, 'rb') as f:
                return b'\n'.join(f.read().splitlines()[-lines:]).decode(errors='replace')
        except OSError:
            return ''

    def close(self):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def run_mutants(chosen, bases, work, log_path):
    """Read every ``(base, mutation)`` of ``chosen``; a list of records, in order."""
    config = dict(bases={name: path for name, (path, _) in bases.items()}, readers=list(READERS),
                  timeout=SETTINGS['timeout'], bound_gib=SETTINGS['bound_gib'], jobs=SETTINGS['jobs'],
                  batch_size=8, workers=2)
    config_path = os.path.join(work, 'config.json')
    with open(config_path, 'w') as f:
        json.dump(config, f)
    data = {}
    child = Child(config_path, log_path)
    ready = child.start()
    records = [None] * len(chosen)
    queue = list(range(len(chosen)))
    in_flight = {}
    tries = collections.Counter()
    stall = SETTINGS['timeout'] * len(READERS) * 2 + 120
    try:
        while queue or in_flight:
            while queue and len(in_flight) < SETTINGS['jobs'] + 2:
                i = queue.pop(0)
                base, mutation = chosen[i]
                if base not in data:
                    with open(bases[base][0], 'rb') as f:
                        data[base] = f.read()
                path = os.path.join(work, f'm{i}.beton')
                with open(path, 'wb') as f:
                    f.write(mutation.apply(data[base]))
                in_flight[i] = path
                child.send({'id': i, 'base': base, 'path': path})
            message = child.read(timeout=stall)
            if message is None:   # the child itself died or stalled: start another, retry
                for i in sorted(in_flight):
                    tries[i] += 1
                    if tries[i] >= 3:
                        base, mutation = chosen[i]
                        lost = {r: {'outcome': 'exit', 'code': 'child process lost'} for r in READERS}
                        records[i] = _record(base, mutation, lost)
                        _done(records[i], in_flight.pop(i), data[base], mutation)
                queue[:0] = sorted(in_flight)
                in_flight.clear()
                child.start()
                continue
            if message.get('type') != 'result':
                continue
            i = message['id']
            base, mutation = chosen[i]
            records[i] = _record(base, mutation, message['results'])
            _done(records[i], in_flight.pop(i), data[base], mutation)
    finally:
        child.close()
    return records, ready, child.starts


def _record(base, mutation, results):
    record = dict(base=base, name=mutation.name, group=mutation.group, kind=mutation.kind, results=results)
    record['failures'] = failures(mutation.kind, results)
    return record


def _done(record, path, base_data, mutation):
    if record['failures'] and SETTINGS['save']:
        os.makedirs(SETTINGS['save'], exist_ok=True)
        name = re.sub(r'[^A-Za-z0-9_.=+@-]+', '_', f"{record['base']}__{record['name']}")[:200]
        target = os.path.join(SETTINGS['save'], name + '.beton')
        if os.path.exists(path):
            shutil.copyfile(path, target)
        else:
            with open(target, 'wb') as f:
                f.write(mutation.apply(base_data))
        record['saved'] = target
    try:
        os.unlink(path)
    except OSError:
        pass


# ------------------------------------------------------------------ judging

def describe(result):
    outcome = result['outcome']
    if outcome == 'ok':
        return 'ok' if result.get('same') else f"ok but different data ({result.get('diff')})"
    if outcome == 'signal':
        return f"signal {result.get('signal')}"
    if outcome == 'hang':
        return f"hang (> {result.get('seconds')} s)"
    if outcome == 'exit':
        return f"exit {result.get('code')}"
    return f"{outcome}: {result.get('type')}: {result.get('message', '')[:160]}"


def failures(kind, results):
    """``[(reader, outcome class, description)]``: why this mutant fails (empty: it passes)."""
    out = []
    for reader in READERS:
        result = results.get(reader)
        if result is None:
            out.append((reader, 'missing', 'no result'))
            continue
        outcome = result['outcome']
        if outcome in BAD_OUTCOMES:
            out.append((reader, outcome, describe(result)))
        elif outcome == 'ok' and not result.get('same') and kind == STRUCTURE:
            out.append((reader, 'silent', describe(result)))
    verified = results.get('verify', {}).get('outcome') == 'ok'
    if kind == STRUCTURE and verified:
        others = [f"{r}: {describe(results[r])}" for r in READERS[:3]
                  if r in results and not (results[r]['outcome'] == 'ok' and results[r].get('same'))]
        if others:
            out.append(('verify', 'passed', 'verify passed, but ' + '; '.join(others)))
    return out


def summary(records, seconds, starts):
    lines = []
    kinds = collections.Counter(r['kind'] for r in records)
    failing = [r for r in records if r['failures']]
    lines.append(f"{len(records)} mutants ({kinds[STRUCTURE]} structure, {kinds[PAYLOAD]} payload) of "
                 f"{len({r['base'] for r in records})} files in {seconds:.1f} s; {len(failing)} fail "
                 f"(seed {SETTINGS['seed']}, child started {starts} time(s))")
    table = collections.Counter()
    for r in records:
        for reader in READERS:
            result = r['results'].get(reader, {'outcome': 'missing'})
            outcome = result['outcome']
            if outcome == 'ok':
                outcome = 'ok-same' if result.get('same') else 'ok-differs'
            table[reader, r['kind'], outcome] += 1
    outcomes = ['ok-same', 'ok-differs', 'error', 'alloc', 'signal', 'hang', 'exit', 'missing']
    lines.append('outcomes (structure/payload): ' + ' '.join(f'{o:>11s}' for o in outcomes))
    for reader in READERS:
        cells = [f"{table[reader, STRUCTURE, o]}/{table[reader, PAYLOAD, o]}" for o in outcomes]
        lines.append(f"  {reader:28s} " + ' '.join(f'{c:>11s}' for c in cells))
    why = collections.Counter((reader, cls) for r in failing for reader, cls, _ in r['failures'])
    lines.append('failures by reader and outcome: ' +
                 (', '.join(f"{reader} {cls}: {n}" for (reader, cls), n in sorted(why.items())) or 'none'))
    by_group = collections.Counter(r['group'] for r in failing)
    lines.append('failing mutants by family: ' + (', '.join(f"{g}: {n}" for g, n in sorted(by_group.items()))
                                                  or 'none'))
    return lines


def failure_lines(records):
    lines = []
    for r in records:
        for reader, cls, text in r['failures']:
            lines.append(f"  {r['base']}:{r['name']} [{r['kind']}] {reader}: {text}")
    return lines


# ------------------------------------------------------------------ the tests

def test_mutations_are_deterministic_and_classified(bases):
    path, found = bases['rgb_raw']
    again = mutations(path, seed=SETTINGS['seed'])
    assert [m.name for m in found] == [m.name for m in again]
    assert len({m.name for m in found}) == len(found)
    with open(path, 'rb') as f:
        data = f.read()
    groups = collections.Counter(m.group for m in found)
    for family in ('header.page_size', 'header.num_samples', 'header.alloc_table_ptr', 'desc.type_id',
                   'meta.ptr.wild', 'meta.ptr.inside', 'meta.dims', 'meta.mode', 'alloc.size', 'alloc.ptr',
                   'truncate', 'flip.data', 'flip.meta', 'flip.table', 'flip.header'):
        assert groups[family] > 0, family
    for m in found:
        assert m.apply(data) != data, m.name
        if m.group == 'flip.data':
            assert m.kind == PAYLOAD
        if m.group in ('flip.header', 'flip.table', 'flip.desc', 'flip.slack', 'truncate', 'meta.ptr.wild'):
            assert m.kind == STRUCTURE, m.name
    chosen = select({name: found for name, (_, found) in bases.items()}, 100, seed=1)
    assert len(chosen) == 100 and len({b for b, _ in chosen}) == len(bases)


@pytest.mark.slow
def test_damaged_files_are_refused_or_read_unchanged(bases, tmp_path):
    per_base = {name: found for name, (_, found) in bases.items()}
    if SETTINGS['only']:
        only = SETTINGS['only']
        try:
            pattern = re.compile(only)
        except re.error:
            pattern = None
        chosen = [(base, m) for base in sorted(per_base) for m in per_base[base]
                  if only in f'{base}:{m.name}' or (pattern and pattern.search(f'{base}:{m.name}'))]
        assert chosen, f"FFCV_FUZZ_ONLY={SETTINGS['only']!r} matches no mutation"
    else:
        chosen = select(per_base, SETTINGS['mutants'], seed=SETTINGS['seed'])
    work = _work_dir(tmp_path)
    log_path = str(tmp_path / 'fuzz_child.log')
    started = time.monotonic()
    try:
        records, ready, starts = run_mutants(chosen, bases, work, log_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started

    # the child's own checks: the bound holds, torch and numba work under it
    self_test = ready['self_test']
    assert 'error' not in self_test, self_test
    assert self_test['big_numpy'] == 'MemoryError', self_test
    assert self_test['torch'] == 4950.0 and self_test['numba'] == 42, self_test
    assert all(r['outcome'] == 'ok' and r.get('same') for r in self_test['reads'].values()), self_test

    report = SETTINGS['report']
    if report:
        with open(report, 'w') as f:
            json.dump(dict(settings=SETTINGS, seconds=seconds, ready=ready, records=records), f, indent=1)
    lines = summary(records, seconds, starts)
    print('\n'.join(lines))
    failing = [r for r in records if r['failures']]
    if SETTINGS['save'] and failing:
        with open(os.path.join(SETTINGS['save'], 'failures.json'), 'w') as f:
            json.dump(failing, f, indent=1)
    if failing:
        pytest.fail('\n'.join(
            lines + ['failing mutants (base:mutation [kind] reader: outcome):'] + failure_lines(records) +
            ["reproduce: FFCV_FUZZ_ONLY='<base>:<mutation name>' runs the mutants whose name contains it; "
             "FFCV_FUZZ_SAVE=<folder> writes the failing ones there; the child's log: " + log_path]),
            pytrace=False)
