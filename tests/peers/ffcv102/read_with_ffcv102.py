"""Read `.beton` files with the released FFCV 1.0.2 and compare with what was written.

Runs INSIDE the FFCV 1.0.2 venv made by setup.sh (it imports `ffcv`, not our
`ffcv_format`):

    /opt/ffcv102-venv/bin/python tests/peers/ffcv102/read_with_ffcv102.py DIR [--workers N] [--batch-size B]

For every `DIR/<name>.beton` there must be a `DIR/<name>.expected.npz`
(written by write_with_ffcv.py). Each file gets one line: PASS, FAIL, XFAIL
(a documented FFCV 1.0.2 limitation reproduced as expected) or XPASS (such a
limitation did not show up). Exit status 1 if any FAIL, else 0.

Expected-file format (`np.load(..., allow_pickle=False)`), version 1:

  __meta__          0-d str array, JSON:
      {"format": 1,
       "num_samples": N,
       "page_size": int | null,         # header page size to check, if given
       "min_pages": int,                # optional: data must span at least this many pages
       "description": str,
       "xfail": null | {"stage": "reader"|"loader"|"values", "reason": str},
       "fields": [                       # in file order
          {"name": str,
           "kind": "int"|"float"|"ndarray"|"bytes"|"json"|"rgb",
           "type_id": int,               # type id stored in the field descriptor
           "handler": str,               # class name of FFCV 1.0.2's handler
           "dtype": str, "shape": [..],  # ndarray only
           "height": H, "width": W,      # rgb only (all images that size)
           "jpeg_max_mean_abs_diff": float,  # rgb: bound for JPEG-coded samples
           "jpeg_max_abs_diff": int},        # rgb: per-pixel bound for JPEG-coded samples
          ...]}
  values__<field>   int:     int64   (N,)
                    float:   float64 (N,)
                    ndarray: (N, *shape) of the field dtype
                    bytes:   uint8, all samples concatenated
                    json:    str (N,), json.dumps of each sample's object
                    rgb:     uint8 (N, H, W, 3), the images as written
  lengths__<field>  bytes only: int64 (N,), each sample's length
  modes__<field>    rgb only: int64 (N,), 1 = stored raw (exact), 0 = JPEG;
                    -1 = whatever the file says (checked against 1.0.2's metadata)
"""
import argparse
import json
import os
import reprlib
import sys
import traceback
from pathlib import Path

# FFCV compiles its pipelines with numba; more numba threads than cores only
# slows things down (and numba refuses NUMBA_NUM_THREADS > cores once set).
_cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
os.environ['NUMBA_NUM_THREADS'] = str(max(1, min(int(os.environ.get('NUMBA_NUM_THREADS', _cores)), _cores)))

import warnings  # noqa: E402
warnings.filterwarnings('ignore')

import numpy as np  # noqa: E402

import ffcv  # noqa: E402,F401
from ffcv.fields import JSONField  # noqa: E402
from ffcv.fields.decoders import (BytesDecoder, FloatDecoder, IntDecoder,  # noqa: E402
                                  NDArrayDecoder, SimpleRGBImageDecoder)
from ffcv.loader import Loader, OrderOption  # noqa: E402
from ffcv.reader import Reader  # noqa: E402

# FFCV 1.0.2 stores RGB images with mode 1 = raw, 0 = JPEG (observed by
# writing both kinds with 1.0.2's own DatasetWriter).
FFCV102_MODE_RAW, FFCV102_MODE_JPG = 1, 0


# Each FFCV Loader compiles its own numba pipeline; when those are garbage
# collected, numba 0.58's dispatcher finalizer raises a harmless KeyError that
# Python prints as "Exception ignored in: <finalize object ...>". Count those
# instead of flooding the output; anything else goes to the default hook.
_numba_finalizer_noise = [0]
_default_unraisablehook = sys.unraisablehook


def _unraisablehook(u):
    tb = u.exc_traceback
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename if tb is not None else ''
    if u.exc_type is KeyError and where.replace(os.sep, '/').endswith('numba/core/dispatcher.py'):
        _numba_finalizer_noise[0] += 1
        return
    _default_unraisablehook(u)


sys.unraisablehook = _unraisablehook


class Mismatch(Exception):
    pass


def check(cond, msg):
    """Raise Mismatch(msg) unless cond; msg may be a callable (evaluated only on failure)."""
    if not cond:
        raise Mismatch(msg() if callable(msg) else msg)


def first_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"shape {a.shape} != {b.shape}"
    bad = np.argwhere(~((a == b) | ((a != a) & (b != b))))
    if not len(bad):
        return "values equal but sign bits differ (e.g. -0.0 vs 0.0)"
    i = tuple(bad[0])
    return f"{len(bad)} elements differ, first at {i}: got {a[i]!r} want {b[i]!r}"


def load_expected(npz_path):
    with np.load(npz_path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    meta = json.loads(str(data.pop('__meta__')))
    check(meta.get('format') == 1, f"unknown expected format {meta.get('format')}")
    return meta, data


def check_reader(path, meta):
    r = Reader(str(path))
    n = meta['num_samples']
    check(int(r.num_samples) == n, f"Reader.num_samples={r.num_samples}, want {n}")
    names = [f['name'] for f in meta['fields']]
    check(list(r.field_names) == names, f"field_names={list(r.field_names)}, want {names}")
    type_ids = [int(t) for t in r.field_descriptors['type_id']]
    want_ids = [f['type_id'] for f in meta['fields']]
    check(type_ids == want_ids, f"type ids={type_ids}, want {want_ids}")
    for f in meta['fields']:
        got = type(r.handlers[f['name']]).__name__
        check(got == f['handler'], f"handler[{f['name']}]={got}, want {f['handler']}")
    if meta.get('page_size') is not None:
        check(int(r.page_size) == meta['page_size'], f"page_size={r.page_size}, want {meta['page_size']}")
    check(len(r.metadata) == n, f"len(metadata)={len(r.metadata)}, want {n}")
    return r


def decoder_for(f):
    kind = f['kind']
    if kind == 'int':
        return IntDecoder()
    if kind == 'float':
        return FloatDecoder()
    if kind == 'ndarray':
        return NDArrayDecoder()
    if kind in ('bytes', 'json'):
        return BytesDecoder()
    if kind == 'rgb':
        return SimpleRGBImageDecoder()
    raise ValueError(f"unknown kind {kind}")


def load_all(path, meta, workers, batch_size):
    """Decode the whole file with FFCV 1.0.2's Loader; returns {field: [batches]}."""
    pipelines = {f['name']: [decoder_for(f)] for f in meta['fields']}
    loader = Loader(str(path), batch_size=batch_size, num_workers=workers,
                    order=OrderOption.SEQUENTIAL, drop_last=False, pipelines=pipelines)
    names = [f['name'] for f in meta['fields']]
    out = {name: [] for name in names}
    nbatches = 0
    for batch in loader:
        if not isinstance(batch, (tuple, list)):
            batch = (batch,)
        check(len(batch) == len(names), f"loader yielded {len(batch)} outputs, want {len(names)}")
        for name, arr in zip(names, batch):
            # FFCV reuses its output buffers: copy before the next batch.
            out[name].append(np.array(arr, copy=True))
        nbatches += 1
    want_batches = -(-meta['num_samples'] // batch_size)
    check(nbatches == want_batches, f"loader yielded {nbatches} batches, want {want_batches}")
    return out


def compare_field(f, batches, data, reader, n):
    name, kind = f['name'], f['kind']
    want = data.get(f'values__{name}')
    if kind in ('int', 'float'):
        if not batches:  # 0 samples: nothing decoded, nothing to compare
            check(n == 0, f"{name}: no batches for {n} samples")
            return f"{name}[{kind}] (no samples)"
        got = np.concatenate([b.reshape(len(b), -1) for b in batches])
        check(got.shape == (n, 1), f"{name}: decoded shape {got.shape}, want ({n}, 1)")
        got = got[:, 0]
        if kind == 'int':
            check(got.dtype.kind == 'i', f"{name}: decoded dtype {got.dtype}")
            check(np.array_equal(got.astype(np.int64), want), lambda: f"{name}: {first_diff(got.astype(np.int64), want)}")
        else:
            check(got.dtype == np.float64, f"{name}: decoded dtype {got.dtype}, want float64")
            same = np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(want))
            check(same, lambda: f"{name}: {first_diff(got, want)}")
        return f"{name}[{kind}] exact"
    if kind == 'ndarray':
        got = np.concatenate(batches) if batches else want[:0]
        check(got.dtype == want.dtype, f"{name}: decoded dtype {got.dtype}, want {want.dtype}")
        check(got.shape == want.shape, f"{name}: decoded shape {got.shape}, want {want.shape}")
        check(np.array_equal(got, want, equal_nan=True), lambda: f"{name}: {first_diff(got, want)}")
        return f"{name}[ndarray {want.dtype}{tuple(want.shape[1:])}] exact"
    if kind == 'bytes':
        lengths = data[f'lengths__{name}']
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        i = 0
        for b in batches:
            # BytesDecoder pads every row to the longest sample of the file
            # (padding content is undefined): keep each row's own length.
            for row in b:
                ln = int(lengths[i])
                check(row.shape[0] >= ln, f"{name}[{i}]: row of {row.shape[0]} bytes < length {ln}")
                exp = want[offsets[i]:offsets[i + 1]]
                check(np.array_equal(row[:ln], exp), lambda: f"{name}[{i}] (len {ln}): {first_diff(row[:ln], exp)}")
                i += 1
        check(i == n, f"{name}: decoded {i} samples, want {n}")
        return f"{name}[bytes] exact ({int(lengths.sum())} B, max {int(lengths.max()) if n else 0})"
    if kind == 'json':
        i = 0
        for b in batches:
            objs = JSONField.unpack(b)  # FFCV 1.0.2's own JSON decoding of a BytesDecoder batch
            for obj in objs:
                exp = json.loads(str(want[i]))
                check(obj == exp, lambda: f"{name}[{i}]: got {reprlib.repr(obj)} want {reprlib.repr(exp)}")
                i += 1
        check(i == n, f"{name}: decoded {i} samples, want {n}")
        return f"{name}[json via JSONField.unpack] equal"
    if kind == 'rgb':
        got = np.concatenate(batches) if batches else want[:0]
        check(got.dtype == np.uint8, f"{name}: decoded dtype {got.dtype}")
        check(got.shape == want.shape, f"{name}: decoded shape {got.shape}, want {want.shape}")
        field_meta = reader.metadata[f"f{list(reader.field_names).index(name)}"]
        file_modes = field_meta['mode'].astype(np.int64)
        want_modes = data[f'modes__{name}']
        known = want_modes >= 0
        check(np.array_equal(file_modes[known], want_modes[known]),
              f"{name}: stored modes {file_modes.tolist()} != expected {want_modes.tolist()}")
        check(np.all(field_meta['height'] == f['height']) and np.all(field_meta['width'] == f['width']),
              f"{name}: metadata height/width differ from {f['height']}x{f['width']}")
        raw = file_modes == FFCV102_MODE_RAW
        jpg = file_modes == FFCV102_MODE_JPG
        check(np.all(raw | jpg), f"{name}: unknown modes {sorted(set(file_modes.tolist()))}")
        if raw.any():
            check(np.array_equal(got[raw], want[raw]), lambda: f"{name} raw: {first_diff(got[raw], want[raw])}")
        worst_mean = worst_max = 0.0
        if jpg.any():
            diff = np.abs(got[jpg].astype(np.int16) - want[jpg].astype(np.int16))
            means = diff.reshape(diff.shape[0], -1).mean(axis=1)
            maxes = diff.reshape(diff.shape[0], -1).max(axis=1)
            worst_mean, worst_max = float(means.max()), int(maxes.max())
            idx = np.flatnonzero(jpg)
            check(worst_mean < f['jpeg_max_mean_abs_diff'],
                  f"{name} jpeg[{idx[means.argmax()]}]: mean abs diff {worst_mean:.2f} >= {f['jpeg_max_mean_abs_diff']}")
            check(worst_max <= f['jpeg_max_abs_diff'],
                  f"{name} jpeg[{idx[maxes.argmax()]}]: max abs diff {worst_max} > {f['jpeg_max_abs_diff']}")
        return (f"{name}[rgb {f['height']}x{f['width']}] {int(raw.sum())} raw exact, {int(jpg.sum())} jpeg "
                f"(worst mean|d|={worst_mean:.2f}, max|d|={worst_max})")
    raise ValueError(f"unknown kind {kind}")


def run_one(path, meta, data, workers, batch_size, stage):
    """stage: a one-element list naming the step in progress (for XFAIL matching)."""
    n = meta['num_samples']
    stage[0] = 'reader'
    reader = check_reader(path, meta)
    stage[0] = 'loader'
    batches = load_all(path, meta, workers, batch_size)
    stage[0] = 'values'
    details = [compare_field(f, batches[f['name']], data, reader, n) for f in meta['fields']]
    # pages holding data, from the allocation table as 1.0.2 reads it
    pages = len(np.unique(reader.alloc_table['ptr'] // reader.page_size)) if len(reader.alloc_table) else 0
    check(pages >= meta.get('min_pages', 0), f"data spans {pages} pages, want >= {meta.get('min_pages')}")
    return f"{n} samples, {pages} pages of {reader.page_size} B; " + "; ".join(details)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('dir', type=Path)
    ap.add_argument('--workers', type=int, default=min(2, _cores))
    ap.add_argument('--batch-size', type=int, default=7)
    ap.add_argument('-v', '--verbose', action='store_true', help='print tracebacks')
    args = ap.parse_args()

    import importlib.metadata as md
    print(f"ffcv {md.version('ffcv')} | numpy {np.__version__} | NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']} "
          f"| workers={args.workers} batch_size={args.batch_size}", flush=True)
    files = sorted(args.dir.glob('*.beton'))
    if not files:
        print(f"FAIL no .beton files in {args.dir}")
        return 1
    counts = {'PASS': 0, 'FAIL': 0, 'XFAIL': 0, 'XPASS': 0}
    for path in files:
        xfail, stage = None, ['expected.npz']
        try:
            meta, data = load_expected(path.with_name(path.name[:-len('.beton')] + '.expected.npz'))
            xfail = meta.get('xfail')
            detail = run_one(path, meta, data, args.workers, args.batch_size, stage)
            status = 'XPASS' if xfail else 'PASS'
            line = f"{status} {path.name}: {detail}"
            if xfail:
                line += f" [expected to fail at {xfail['stage']}: {xfail['reason']}]"
        except Exception as e:  # noqa: BLE001 - report every failure as one line
            msg = f"{type(e).__name__}: {e}".replace('\n', ' ')[:400]
            status = 'XFAIL' if xfail and xfail['stage'] == stage[0] else 'FAIL'
            line = f"{status} {path.name}: [{stage[0]}] {msg}"
            if status == 'XFAIL':
                line += f" [known FFCV 1.0.2 limitation: {xfail['reason']}]"
            if args.verbose:
                traceback.print_exc(file=sys.stdout)
        counts[status] += 1
        print(line, flush=True)
    if _numba_finalizer_noise[0]:
        print(f"(ignored {_numba_finalizer_noise[0]} KeyError(s) from numba's dispatcher finalizer at garbage collection)")
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['XFAIL']} xfailed, {counts['XPASS']} xpassed")
    return 1 if counts['FAIL'] else 0


if __name__ == '__main__':
    sys.exit(main())
