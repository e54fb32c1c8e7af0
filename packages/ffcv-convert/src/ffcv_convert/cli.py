"""The subcommands that work on files: convert, inspect, verify, concat, subset, append.

Two programs have them: ``ffcv-convert`` (this package's console script, also
``python -m ffcv_convert``; it needs neither torch nor the loader) and ``ffcv`` (the
meta-package's, which adds ``doctor``). Both are built by
:func:`ffcv_convert.command_line.run_command_line` from command modules like this one:
each has ``add_commands(subparsers)``, which adds its subcommands with
``set_defaults(run=function, prog=...)``. A command function takes the parsed arguments
and returns an exit code; it raises on failure and the dispatcher prints one line.
``args.prog`` is the command as the user ran it (``ffcv convert``, ``ffcv-convert
convert``), for the messages a command prints itself.

    ffcv-convert convert data/train train.beton --max-resolution 256
    ffcv-convert inspect train.beton --show 16
"""
import argparse
import functools
import json
import os
import sys
import time

from ffcv_format import OutputExistsError
from ffcv_format.units import positive_int_argument, size_argument

from .__about__ import __version__
from .command_line import run_command_line

__all__ = ['DESCRIPTION', 'add_commands', 'main']

_RAW = argparse.RawDescriptionHelpFormatter


def _storage_option(text):
    if '=' not in text:
        raise argparse.ArgumentTypeError(f"write storage options as KEY=VALUE, got {text!r}")
    key, value = text.split('=', 1)
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        pass
    return key, value


# ------------------------------------------------------------------------ convert

CONVERT_HELP = """\
Convert a dataset into one .beton file, reading many files at once and encoding on
all cores. SRC is an image folder (SRC/<class>/<image>), a CSV/TSV/Parquet manifest
(a column of image paths, relative to the manifest, and label/metadata columns) or
WebDataset tar shards (a path, a brace pattern, or a quoted list), on local disk or
any fsspec URL: s3://, gs://, http(s)://.

An interrupted conversion (Ctrl-C, a crash, a killed machine) keeps its finished parts
in DST.parts/; run the same command again to resume it. A missing or corrupt image, or
a folder that cannot be listed, stops the conversion with its path (fix it and run
again), or with --skip-bad is skipped and listed in DST.skipped.txt (a skipped class
folder keeps its label: the other classes are not renumbered).

--engine ray converts the parts as Ray tasks on a cluster (pip install
'ffcv-convert[ray]') and writes the same file, byte for byte. The tasks write the parts
into DST.parts/, which every node must then see at the same path (a shared filesystem),
or upload them to --parts-url (object storage), from where they are downloaded here.

examples:
  %(prog)s data/train train.beton --max-resolution 256 --jpeg-quality 90
  %(prog)s data/train train.beton --write-mode jpg --keep-jpeg
  %(prog)s s3://bucket/train train.beton -S anon=true --io-workers 128
  %(prog)s labels.csv train.beton --path-column file --fields image,label=class_id:int
  %(prog)s 'shards/train-{000000..000146}.tar' train.beton --fields image=jpg,label=cls:int
  %(prog)s data/train train.beton --skip-bad --skipped-report bad-images.txt
  %(prog)s /shared/train /shared/train.beton --engine ray --address 10.0.0.5:6379
  %(prog)s s3://bucket/train train.beton --engine ray --parts-url s3://bucket/tmp/train-parts
"""


def _add_convert(subparsers):
    p = subparsers.add_parser('convert',
                              help='convert an image folder, manifest or WebDataset shards to a .beton file',
                              description=CONVERT_HELP, formatter_class=_RAW)
    p.add_argument('src', metavar='SRC', help='image folder, manifest (.csv/.tsv/.parquet) or shards (.tar, '
                                              'brace pattern); a path or fsspec URL')
    p.add_argument('dst', metavar='DST', help='the .beton file to write')
    p.add_argument('--source', choices=('folder', 'manifest', 'webdataset'),
                   help='the kind of SRC (default: guessed from its name)')
    p.add_argument('--fields', action='append', metavar='SPEC',
                   help='fields to write, as NAME=KEY:TYPE (comma-separated or repeated); KEY is a record '
                        'key (folder: image, label, class, path; manifest: a column or image; '
                        'WebDataset: an extension such as jpg or cls), TYPE one of image, int, float, str, '
                        'json, bytes (default: image and label)')
    g = p.add_argument_group('images')
    g.add_argument('--write-mode', choices=('jpg', 'raw', 'smart', 'proportion', 'png'), default='jpg',
                   help='how images are stored (default: jpg)')
    g.add_argument('--max-resolution', type=positive_int_argument, metavar='N',
                   help='shrink images whose longer side is larger than N pixels')
    g.add_argument('--min-resolution', type=positive_int_argument, metavar='N',
                   help='grow images whose shorter side is smaller than N pixels')
    g.add_argument('--jpeg-quality', type=int, default=90, metavar='Q',
                   help='JPEG quality 1..100 (default: 90)')
    g.add_argument('--keep-jpeg', action='store_true',
                   help='store JPEG files unchanged when they need no resize (no re-encoding loss)')
    g.add_argument('--smart-threshold', type=int, metavar='BYTES',
                   help="with --write-mode smart: images larger than this (raw) are stored as JPEG")
    g.add_argument('--compress-probability', type=float, default=0.5, metavar='P',
                   help='with --write-mode proportion: the share of images stored as JPEG (default: 0.5)')
    g.add_argument('--interpolation', choices=('area', 'linear', 'cubic', 'lanczos', 'nearest'),
                   default='area', help='resize filter (default: area)')
    g.add_argument('--channels', type=int, choices=(1, 3, 4), default=3,
                   help='1 (grayscale), 3 (RGB, default) or 4 (RGBA; needs --write-mode raw or png)')
    g = p.add_argument_group('sources')
    g.add_argument('--path-column', default='path', metavar='NAME',
                   help='manifest column holding image paths (default: path)')
    g.add_argument('-S', '--storage-option', action='append', type=_storage_option, default=[],
                   metavar='KEY=VALUE', help='fsspec option for SRC, e.g. anon=true or '
                                             'endpoint_url=http://127.0.0.1:9000 (repeatable)')
    g = p.add_argument_group('running')
    g.add_argument('--workers', type=positive_int_argument, metavar='N', help='encoding threads (default: all cores)')
    g.add_argument('--io-workers', type=positive_int_argument, metavar='N',
                   help='reads in flight (default: 64 for remote sources; local files are read '
                        'by the workers unless this is given)')
    g.add_argument('--part-size', type=positive_int_argument, default=1000, metavar='N',
                   help='samples per resumable part (default: 1000; WebDataset: one part per shard)')
    g.add_argument('--skip-bad', action='store_true',
                   help='skip missing, unreadable or corrupt samples and folders that cannot be listed, '
                        'and list them in a report')
    g.add_argument('--skipped-report', metavar='PATH',
                   help='where --skip-bad lists them (default: DST.skipped.txt)')
    g.add_argument('--page-size', type=size_argument, default=1 << 23, metavar='SIZE',
                   help='page size (default: 8MiB)')
    g.add_argument('--overwrite', action='store_true', help='replace DST if it exists')
    g.add_argument('--restart', action='store_true',
                   help='discard unfinished work in DST.parts/ and start over')
    g.add_argument('-q', '--quiet', action='store_true', help='no progress bar')
    g = p.add_argument_group('on a cluster')
    g.add_argument('--engine', choices=('local', 'ray'), default='local',
                   help="local (this machine's cores, default) or ray (Ray tasks on a cluster, one per part; "
                        "--workers is then each task's threads and CPUs, default 1)")
    g.add_argument('--address', metavar='ADDR',
                   help='the Ray cluster, e.g. 10.0.0.5:6379 or ray://head:10001 (default: $RAY_ADDRESS, '
                        'else the cluster `ray start` started on this machine, else a new Ray on this machine)')
    g.add_argument('--parts-url', metavar='URL',
                   help='object storage where the Ray tasks upload finished parts (e.g. '
                        's3://bucket/tmp/parts), for nodes that do not share the filesystem of DST '
                        '(default: DST.parts/)')
    g.add_argument('-P', '--parts-storage-option', action='append', type=_storage_option, default=[],
                   metavar='KEY=VALUE', help='fsspec option for --parts-url (repeatable)')
    p.set_defaults(run=run_convert, prog=p.prog)


def _overwrite_flag(run):
    """``run`` with the command line's words for an existing output: the flag, not the
    Python argument."""
    @functools.wraps(run)
    def checked(args):
        try:
            return run(args)
        except OutputExistsError as e:
            raise OutputExistsError(e.path, 'add --overwrite to replace it') from None

    return checked


def _engine_arguments(args):
    """convert()'s engine arguments from the command line's, refusing cluster options
    given without ``--engine ray``."""
    if args.engine != 'ray':
        given = [flag for flag, value in (('--address', args.address), ('--parts-url', args.parts_url),
                                          ('--parts-storage-option', args.parts_storage_option)) if value]
        if given:
            raise ValueError(f"{', '.join(given)} is for --engine ray")
        return {}
    if args.parts_storage_option and not args.parts_url:
        raise ValueError("--parts-storage-option is for --parts-url")
    return {'engine': 'ray', 'ray_address': args.address, 'parts_url': args.parts_url,
            'parts_storage_options': dict(args.parts_storage_option) if args.parts_url else None}


@_overwrite_flag
def run_convert(args):
    from .conversion import convert, work_dir_for
    image_options = {'write_mode': args.write_mode, 'max_resolution': args.max_resolution,
                     'min_resolution': args.min_resolution, 'jpeg_quality': args.jpeg_quality,
                     'keep_jpeg': args.keep_jpeg, 'smart_threshold': args.smart_threshold,
                     'compress_probability': args.compress_probability,
                     'interpolation': args.interpolation, 'channels': args.channels}
    started = time.perf_counter()
    try:
        result = convert(args.src, args.dst, args.fields, image_options=image_options, kind=args.source,
                         path_column=args.path_column, storage_options=dict(args.storage_option),
                         workers=args.workers or -1, io_workers=args.io_workers, part_size=args.part_size,
                         on_error='skip' if args.skip_bad else 'stop', skipped_report=args.skipped_report,
                         overwrite=args.overwrite, restart=args.restart, page_size=args.page_size,
                         progress=not args.quiet, **_engine_arguments(args))
    except KeyboardInterrupt:
        print(f"{args.prog}: interrupted; finished parts are kept in {work_dir_for(args.dst)}: "
              "run the same command again to resume", file=sys.stderr)
        raise
    seconds = time.perf_counter() - started
    reused = f", {result.parts_reused} of {result.num_parts} parts reused" if result.parts_reused else ""
    skipped = ""
    if result.skipped or result.skipped_folders:
        folders = f", {len(result.skipped_folders)} unreadable folder(s)" if result.skipped_folders else ""
        skipped = f", {len(result.skipped)} skipped{folders} (see {result.skipped_report})"
    print(f"wrote {args.dst}: {result.num_samples} samples, fields {', '.join(result.fields)} "
          f"in {seconds:.1f} s ({result.num_samples / max(seconds, 1e-9):.0f} samples/s){reused}{skipped}")
    return 0


# ------------------------------------------------------------------------ inspect / verify

INSPECT_HELP = """\
Describe a .beton file: its fields and their settings, the number of samples, bytes
stored per field (and per sample), image sizes and storage modes, label ranges, and how
full the pages are. --show N also writes a contact sheet: a PNG grid of N images
(evenly spaced through the file) with their indices and labels.

examples:
  %(prog)s train.beton
  %(prog)s train.beton --show 64 --output sheet.png
  %(prog)s train.beton --json
"""


def _add_inspect(subparsers):
    p = subparsers.add_parser('inspect', help='describe a .beton file (and draw a contact sheet)',
                              description=INSPECT_HELP, formatter_class=_RAW)
    p.add_argument('file', metavar='FILE')
    p.add_argument('--show', type=positive_int_argument, metavar='N', help='write a contact sheet PNG of N samples')
    p.add_argument('--output', metavar='PNG', help='where --show writes (default: FILE with .contact.png, '
                                                   'in the current folder)')
    p.add_argument('--field', metavar='NAME', help='the image field to show (default: the first)')
    p.add_argument('--json', action='store_true', help='print the description as JSON')
    p.set_defaults(run=run_inspect, prog=p.prog)


def run_inspect(args):
    from .inspection import contact_sheet, format_summary, summarize
    summary = summarize(args.file)
    print(json.dumps(summary, indent=1) if args.json else format_summary(summary))
    if args.show:
        output = args.output or os.path.splitext(os.path.basename(args.file))[0] + '.contact.png'
        tiles = contact_sheet(args.file, output, args.show, field=args.field)
        print(f"contact sheet: {tiles} samples in {output}", file=sys.stderr if args.json else sys.stdout)
    return 0


VERIFY_HELP = """\
Check a .beton file completely: the header, the field descriptors, every pointer and
allocation, and that every sample decodes. Exits with status 1 and lists the problems
(up to 20) if any.

examples:
  %(prog)s train.beton
  %(prog)s --no-decode huge.beton      # structure only (fast)
"""


def _add_verify(subparsers):
    p = subparsers.add_parser('verify', help='check a .beton file completely',
                              description=VERIFY_HELP, formatter_class=_RAW)
    p.add_argument('file', metavar='FILE')
    p.add_argument('--no-decode', action='store_true', help='check the structure only, do not decode samples')
    p.set_defaults(run=run_verify, prog=p.prog)


def run_verify(args):
    from ffcv_format import FormatError, verify
    try:
        summary = verify(args.file, decode=not args.no_decode)
    except FormatError as e:
        print(f"{args.prog}: {e}", file=sys.stderr)
        return 1
    fields = ', '.join(f"{name} ({kind})" for name, kind in summary['fields'].items())
    print(f"{args.file}: OK, {summary['num_samples']} samples, fields {fields}")
    return 0


# ------------------------------------------------------------------------ concat / subset / append

CONCAT_HELP = """\
Concatenate .beton files with the same fields (names, types and settings) into one:
the samples of the first file, then those of the second, and so on. Stored bytes are
copied as they are (no decoding). The output appears only once complete.

examples:
  %(prog)s part-a.beton part-b.beton part-c.beton -o all.beton
"""

SUBSET_HELP = """\
Write some samples of a .beton file into a new file, in the order given (an index may
repeat). Indices are Python-style: single indices and start:stop[:step] ranges,
separated by commas; or a file with one index per line (or a .npy array).

examples:
  %(prog)s train.beton small.beton --indices 0:1000
  %(prog)s train.beton every-10th.beton --indices ::10
  %(prog)s train.beton picked.beton --indices-file keep.txt
"""

APPEND_HELP = """\
Add the samples of other .beton files (with the same fields) after those of BASE,
producing a new file atomically. To add images, convert them first (the convert command).
Give -o BASE --overwrite to replace BASE itself (readers of the old file are unaffected).

examples:
  %(prog)s train.beton new-images.beton -o train-v2.beton
  %(prog)s train.beton extra.beton -o train.beton --overwrite
"""


def _add_combine(subparsers):
    p = subparsers.add_parser('concat', help='concatenate .beton files with the same fields',
                              description=CONCAT_HELP, formatter_class=_RAW)
    p.add_argument('files', nargs='+', metavar='FILE')
    p.add_argument('-o', '--output', required=True, metavar='DST')
    p.add_argument('--overwrite', action='store_true', help='replace DST if it exists')
    p.set_defaults(run=run_concat, prog=p.prog)

    p = subparsers.add_parser('subset', help='write chosen samples of a .beton file into a new one',
                              description=SUBSET_HELP, formatter_class=_RAW)
    p.add_argument('file', metavar='FILE')
    p.add_argument('dst', metavar='DST')
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument('--indices', metavar='SPEC', help='e.g. 0:1000,2000:3000:2,7')
    which.add_argument('--indices-file', metavar='PATH', help='text (one index per line) or .npy')
    p.add_argument('--overwrite', action='store_true', help='replace DST if it exists')
    p.set_defaults(run=run_subset, prog=p.prog)

    p = subparsers.add_parser('append', help='a new file: a .beton file followed by the samples of others',
                              description=APPEND_HELP, formatter_class=_RAW)
    p.add_argument('base', metavar='BASE')
    p.add_argument('additions', nargs='+', metavar='FILE')
    p.add_argument('-o', '--output', required=True, metavar='DST')
    p.add_argument('--overwrite', action='store_true', help='replace DST if it exists')
    p.set_defaults(run=run_append, prog=p.prog)


@_overwrite_flag
def run_concat(args):
    from .combine import concat
    count = concat(args.files, args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}: {count} samples from {len(args.files)} files")
    return 0


def _read_indices(args):
    import numpy as np
    from ffcv_format import Reader

    from .combine import parse_indices
    with Reader(args.file) as reader:
        length = reader.num_samples
    if args.indices is not None:
        return parse_indices(args.indices, length)
    if args.indices_file.endswith('.npy'):
        return np.load(args.indices_file)
    with open(args.indices_file, encoding='utf-8') as f:
        text = ','.join(line.split('#', 1)[0].strip() for line in f)
    return parse_indices(text, length)


@_overwrite_flag
def run_subset(args):
    from .combine import subset
    indices = _read_indices(args)
    count = subset(args.file, indices, args.dst, overwrite=args.overwrite)
    print(f"wrote {args.dst}: {count} samples of {args.file}")
    return 0


@_overwrite_flag
def run_append(args):
    from .combine import append
    count = append(args.base, args.additions, args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}: {count} samples ({args.base} + {len(args.additions)} file(s))")
    return 0


def add_commands(subparsers):
    """Add convert, inspect, verify, concat, subset and append to an argparse subparsers object."""
    _add_convert(subparsers)
    _add_inspect(subparsers)
    _add_verify(subparsers)
    _add_combine(subparsers)


# ------------------------------------------------------------------------ the ffcv-convert program

DESCRIPTION = """\
ffcv-convert: datasets into .beton files, and tools for .beton files.

The file commands of the ffcv command line, without torch or the loader installed.

examples:
  ffcv-convert convert data/train train.beton --max-resolution 256
  ffcv-convert inspect train.beton --show 16
  ffcv-convert verify train.beton
  ffcv-convert COMMAND --help          (options and examples of a command)
"""


def main(argv: list[str] | None = None) -> int:
    """Run the ``ffcv-convert`` command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    >>> main(['verify', 'train.beton'])          # doctest: +SKIP
    train.beton: OK, 1000 samples, fields image (RGBImageField), label (IntField)
    0
    """
    return run_command_line('ffcv-convert', ['ffcv_convert.cli'], argv, description=DESCRIPTION,
                            version=f'ffcv-convert {__version__}')
