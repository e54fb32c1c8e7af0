"""``ffcv doctor``: which stage limits loading *this* file with *this* pipeline on *this* machine.

The doctor measures each stage of the data path on its own and compares them:

1. **Storage.** The file is dropped from the page cache (``posix_fadvise(DONTNEED)``, after
   which ``mincore`` tells how much of it really left memory) and read cold three ways:
   sequentially in large chunks, as the file's pages in random order (what the process
   cache does, ``os_cache=False``), and as random samples' data (what a memory map does
   with order RANDOM, ``os_cache=True``); then the part read sequentially is read again,
   warm, from the page cache. MB/s become samples/s through the file's bytes per sample
   (file size / samples). Each pass stops after about ``storage_seconds``.
2. **Decode + augment.** The ``Loader`` runs the pipeline from memory (``os_cache=True``, the
   data warm) with 1 worker thread, with the chosen number, and with one per core when
   fewer were chosen. A warm-up epoch is started first (it compiles the pipeline) and
   stopped; timing starts with a fresh epoch, so nothing prepared ahead is counted.
   With ``os_cache=False`` the loader as configured is timed as well.
3. **Transfer and model** (CUDA only; a model may also be timed on the CPU): one batch
   of the pipeline's output copied to the device from pageable and from pinned memory,
   and the model's forward (+ backward) pass on a batch shaped like that output.

The storage stage at the chosen settings is computed from these figures:

- ``os_cache=True``: from the page cache (warm) if the file fits in the memory available
  (``MemAvailable``), otherwise from disk (random samples; pages for QUASI_RANDOM; the
  sequential figure for SEQUENTIAL).
- ``os_cache=False``: the loader reads whole pages into its own cache of
  ``process_cache_limit`` bytes. If the file fits there, as ``os_cache=True``. If not,
  each sample costs a page read unless its page is still cached: with order RANDOM,
  ``distinct pages per batch / batch_size x (1 - cached share)`` pages per sample; with
  SEQUENTIAL or QUASI_RANDOM every page is read once an epoch. Page reads come from the
  page cache if the file fits in RAM, from disk otherwise. When the loader as configured
  measures below 80% of the decode rate, that measurement is taken as the storage figure
  if it is lower.

The slowest stage is the bottleneck; each recommendation carries the measured figures
it is computed from and its expected gain on the loader's throughput (capped by the next
slowest stage).

>>> report = diagnose('train.beton', workers=2)            # doctest: +SKIP
>>> report.bottleneck                                       # doctest: +SKIP
'decode'
>>> print(report.render())                                  # doctest: +SKIP

The modules: ``pipelines`` (the pipelines measured, read as data), ``file_facts`` (the file's
tables, this machine's memory and cores), ``measurements`` (each stage timed on its own, its
figures a dataclass; :class:`Measurements` gathers them), ``analysis`` (the bottleneck and recommendations:
a pure function of a :class:`Measurements`), ``report`` (text and JSON), ``diagnosis``
(:func:`diagnose`: measure, analyse, report), ``arguments`` and ``command`` (``ffcv doctor``).
"""
from .analysis import STAGE_NAMES, Analysis, Recommendation, Stage, analyse
from .arguments import add_commands
from .diagnosis import diagnose
from .file_facts import FileFacts
from .measurements import (ColdRead, JpegTiming, LoaderRun, Measurements, ModelRun, Rate, Skipped,
                           StorageReads, TransferRates, WarmRead)
from .pipelines import default_pipelines, parse_pipelines
from .report import Report

__all__ = ['STAGE_NAMES', 'Analysis', 'ColdRead', 'FileFacts', 'JpegTiming', 'LoaderRun', 'Measurements',
           'ModelRun', 'Rate', 'Recommendation', 'Report', 'Skipped', 'Stage', 'StorageReads', 'TransferRates',
           'WarmRead', 'add_commands', 'analyse', 'default_pipelines', 'diagnose', 'parse_pipelines']
