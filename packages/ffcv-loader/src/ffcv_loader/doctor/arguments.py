"""``ffcv doctor``'s arguments: its help and :func:`add_commands`."""
import argparse

from ffcv_format.units import positive_int_argument, size_argument

from .command import run_doctor
from .diagnosis import ORDERS

DOCTOR_HELP = """\
Find what limits loading FILE with your pipeline on this machine. Measures, each on its
own: reading the file from disk (cold: the file is first dropped from the page cache;
sequential, random pages, random samples) and from the page cache (warm); decoding and
augmenting with the Loader on 1 worker thread and on all cores; and with a CUDA device,
copying a batch to it (pinned and pageable) and your model's speed on such batches.
Then names the slowest stage and the settings to change, each with the measured figures
it comes from and its expected gain.

Pipelines are data (JSON or YAML), never code (--pipeline, repeatable):
  FIELD=[ITEM,...]    the operations of one field, each ITEM {"op": NAME, ARG: VALUE, ...}
                      or "NAME" (no arguments); FIELD=NAME,NAME,... for operations without
                      arguments; FIELD=None leaves the field out; FIELD= gives it the
                      Loader's default decoder. NAMEs are the entry points of the group
                      ffcv.ops: ffcv_ops' operations and those of installed plugins. Lists
                      become tuples; "float16" given for a dtype argument is a numpy dtype.
  --pipelines FILE    a JSON or YAML file (or text) of {FIELD: [ITEM, ...], ...}.
  MODULE:FUNCTION     (or FILE.py:FUNCTION) a function returning the pipelines dict as
                      the Loader takes it.
  none given          image fields: RandomResizedCropRGBImageDecoder(output_size=(224,
                      224)), RandomHorizontalFlip, ToTensor, ToTorchImage; int and float
                      fields: IntDecoder/FloatDecoder, ToTensor; others: default.
  Fields not named get the Loader's default decoder.

A model (--model MODULE:CALLABLE or FILE.py:CALLABLE) is a callable with no arguments
returning a torch.nn.Module; it gets the pipelines' first output of 2 or more dimensions
(the images; as float32 if it is an integer tensor). Without CUDA it is timed on the CPU.

Dropping FILE from the page cache makes other readers of it read it from disk again
(--no-evict keeps it, and the cold figures are then not cold).

examples:
  ffcv doctor train.beton
  ffcv doctor train.beton --workers 8 --batches 20
  ffcv doctor train.beton --pipeline 'image=[{"op": "RandomResizedCropRGBImageDecoder", "output_size": [160, 160]}, "RandomHorizontalFlip", "ToTensor", "ToTorchImage"]' --pipeline label=IntDecoder,ToTensor
  ffcv doctor train.beton --pipelines pipelines.yaml
  ffcv doctor train.beton --pipeline train.py:make_pipelines --model torchvision.models:resnet50
  ffcv doctor train.beton --no-os-cache --order quasi_random --json > report.json
"""


def _order(text):
    value = text.strip().lower().replace('-', '_')
    if value not in ORDERS:
        raise argparse.ArgumentTypeError(f"invalid order {text!r} (choose from {', '.join(ORDERS)})")
    return value


def add_commands(subparsers):
    """Add ``doctor`` to an argparse subparsers object."""
    p = subparsers.add_parser('doctor', help="find what limits loading a .beton file (disk, decoding, "
                                             "transfer, model) and what to change",
                              description=DOCTOR_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('file', metavar='FILE')
    p.add_argument('--pipeline', '--pipelines', action='append', metavar='SPEC',
                   help='FIELD=[ITEM,...] (repeatable), a JSON/YAML FILE of {FIELD: [ITEM,...]}, or '
                        'MODULE:FUNCTION / FILE.py:FUNCTION (see above)')
    p.add_argument('--workers', type=positive_int_argument, metavar='N', help='worker threads (default: one per core)')
    p.add_argument('--batch-size', type=positive_int_argument, default=256, metavar='N',
                   help='samples per batch (default: 256, at most the number of samples)')
    p.add_argument('--batches', type=positive_int_argument, metavar='N',
                   help='batches timed per loader measurement (default: about 1.5 s of them)')
    p.add_argument('--order', type=_order, default='random', metavar='ORDER',
                   help='sequential, random (default) or quasi_random')
    p.add_argument('--os-cache', action=argparse.BooleanOptionalAction, default=True,
                   help='read through the OS page cache (default) or the loader\'s own process cache')
    p.add_argument('--process-cache-limit', type=size_argument, metavar='SIZE',
                   help='with --no-os-cache: bytes of the process cache (default: half the memory available)')
    p.add_argument('--model', metavar='SPEC', help='MODULE:CALLABLE or FILE.py:CALLABLE returning a torch module')
    p.add_argument('--inference', action='store_true', help='time the model forward only (default: forward + '
                                                           'backward)')
    p.add_argument('--device', metavar='DEV', help='cuda, cuda:N or cpu (default: cuda if available)')
    p.add_argument('--no-evict', action='store_true', help='do not drop FILE from the page cache')
    p.add_argument('--json', action='store_true', help='print the full report as JSON')
    p.add_argument('-q', '--quiet', action='store_true', help='no progress lines on stderr')
    p.set_defaults(run=run_doctor)
