"""The doctor's diagnosis: from the measured figures (:class:`Measurements`), the stages, the
slowest one (the bottleneck) and the settings to change, each with the figures it comes from
and its expected gain on the loader's throughput. A pure function of its input (no I/O, no
timing), so its rules are tested on made-up figures."""
import math
from dataclasses import dataclass, field

from ffcv_format.units import human_size

from .measurements import Skipped

#: stage keys (``Report.bottleneck``) and how the report names them
STAGE_NAMES = {'storage': 'storage read', 'decode': 'decode + augment', 'transfer': 'host-to-device transfer',
               'model': 'model'}

#: scaling below this share of the ideal (threads x one thread) is reported as poor
POOR_SCALING = 0.7
#: a change is recommended only when its expected gain on the slowest stage is at least this
MIN_GAIN = 1.1


@dataclass
class Stage:
    """A measured stage: ``samples_s`` (None when skipped), ``mb_s`` where it applies, a note."""
    key: str
    label: str
    samples_s: float = None
    mb_s: float = None
    note: str = ''


@dataclass
class Recommendation:
    """A setting to change, why (with the measured figures it comes from), and the expected
    gain on the loader's throughput (a factor; None where there is nothing to gain)."""
    setting: str
    why: str
    expected_gain: float = None


@dataclass
class Analysis:
    """What :func:`analyse` found: the stages (:class:`Stage`), the ``bottleneck`` (a key of
    :data:`STAGE_NAMES`) and its line, the recommendations, notes, the storage figure at the
    settings given (``storage_at_settings``) and each stage's samples/s (``rates``)."""
    stages: list
    bottleneck: str
    bottleneck_line: str
    recommendations: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    storage_at_settings: dict = field(default_factory=dict)
    rates: dict = field(default_factory=dict)


def _num(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _gain(factor):
    return f"{factor:.2f}x" if factor < 10 else f"{factor:.0f}x"


def _threads(n):
    return f"{n} worker thread" + ('s' if n != 1 else '')


def storage_rate(storage, facts, *, os_cache, order, batch_size, process_cache_limit=None, memory=None):
    """The samples/s storage gives at these settings in steady state, with how it was found:
    ``(samples_s, mb_s, source, bytes_per_sample_read)`` (see the module docstring)."""
    bps = storage.bytes_per_sample
    size, ps = facts.file_size, facts.page_size
    fits_ram = memory is None or size <= memory
    warm = storage.warm.mb_s * 1e6

    def cold_rate():
        if order == 'sequential':
            return storage.cold_sequential.mb_s * 1e6, 'disk, sequential'
        if order == 'quasi_random' or not os_cache or not storage.cold_random_samples:
            key = 'cold_random_pages' if storage.cold_random_pages else 'cold_sequential'
            return getattr(storage, key).mb_s * 1e6, 'disk, pages in random order'
        cold = storage.cold_random_samples
        return cold.samples_s * bps, 'disk, random samples'

    if os_cache:
        if fits_ram:
            rate, source, per_sample = warm, 'page cache (the file fits in the memory available)', bps
        else:
            rate, where = cold_rate()
            source, per_sample = f"{where} (the file is larger than the memory available)", bps
        return rate / per_sample, rate / 1e6, source, per_sample
    if process_cache_limit is None:
        process_cache_limit = min(size, (memory or 8 << 30) // 2)
    num_pages = max(1, -(-(facts.data_end - facts.data_start) // ps))
    cached_pages = max(1, int(process_cache_limit) // ps)
    if cached_pages >= num_pages:
        rate = warm if fits_ram else cold_rate()[0]
        return rate / bps, rate / 1e6, 'process cache (holds the whole file)', bps
    hit = cached_pages / num_pages
    if order == 'random':
        distinct = num_pages * (1 - (1 - 1 / num_pages) ** batch_size)
        per_sample = max(bps, distinct / batch_size * (1 - hit) * ps)
        how = (f"process cache of {cached_pages} of {num_pages} pages, order RANDOM: "
               f"{per_sample / 1e6:.2f} MB read per sample")
    else:
        per_sample = bps
        how = f"process cache of {cached_pages} of {num_pages} pages, each page read once an epoch"
    if fits_ram:
        rate, where = warm, 'from the page cache'
    else:
        rate, where = cold_rate()
    return rate / per_sample, rate / 1e6, f"{how}, {where}", per_sample


def suggested_max_resolution(output_size):
    """A storage resolution for crops of ``output_size``: 256 for 224 (the crop ratio of
    ImageNet training, 224/256), rounded up to a multiple of 8."""
    side = max(output_size) * 256 / 224
    return int(math.ceil(side / 8) * 8)


def analyse(results):
    """Stages, bottleneck and recommendations from the measurements (a :class:`Measurements`):
    a pure function of its input (no file is read, nothing is timed).

    >>> result = analyse(results)                                         # doctest: +SKIP
    >>> result.bottleneck, [r.setting for r in result.recommendations]    # doctest: +SKIP
    """
    facts, storage, decode, settings = results.file, results.storage, results.decode, results.settings
    jpeg, transfer, model, memory = results.jpeg, results.transfer, results.model, results.memory
    crops = results.crops
    workers, cores, batch_size = settings['workers'], settings['cores'], settings['batch_size']
    order, os_cache = settings['order'], settings['os_cache']
    limit = settings.get('process_cache_limit')
    stages, notes, recs = [], [], []

    def storage_at(**changes):
        options = {'os_cache': os_cache, 'order': order, 'batch_size': batch_size, 'process_cache_limit': limit}
        options.update(changes)
        return storage_rate(storage, facts, memory=memory, **options)

    # ---- storage
    cold_note = {True: '', False: '(not evicted: read from memory?)'}.get(storage.evicted,
                                                                        '(eviction not confirmed)')
    bps = storage.bytes_per_sample
    for key, label in (('cold_sequential', 'storage: disk, sequential (cold)'),
                       ('cold_random_pages', f"storage: disk, random {human_size(facts.page_size)} pages (cold)"),
                       ('cold_random_samples', 'storage: disk, random samples (cold)'),
                       ('warm', 'storage: page cache (warm)')):
        m = getattr(storage, key)
        if m:
            stages.append(Stage('storage', label, m.samples_s, m.mb_s,
                                cold_note if key.startswith('cold') else ''))
    storage_s, storage_mb, storage_source, per_sample = storage_at()
    configured = decode.get('configured')
    if configured and configured.samples_s < 0.8 * decode['chosen'].samples_s \
            and configured.samples_s < storage_s:
        storage_s = configured.samples_s
        storage_source += f"; the loader as configured measured {_num(storage_s)} samples/s"
    storage_eff = {'samples_s': storage_s, 'mb_s': storage_mb, 'source': storage_source,
                   'bytes_read_per_sample': per_sample}
    stages.append(Stage('storage', 'storage at these settings', storage_s, None, storage_source))

    # ---- decode
    one, chosen, all_cores = decode['one'], decode['chosen'], decode.get('all_cores')
    stages.append(Stage('decode', f"decode + augment, {_threads(1)}", one.samples_s))
    if workers != 1:
        stages.append(Stage('decode', f"decode + augment, {_threads(workers)}", chosen.samples_s))
    if all_cores:
        stages.append(Stage('decode', f"decode + augment, {_threads(cores)} (all cores)", all_cores.samples_s))
    if configured:
        stages.append(Stage('loader', f"loader as configured (os_cache={os_cache})", configured.samples_s))
    decode_s = chosen.samples_s

    # ---- transfer, model
    transfer_s = model_s = None
    if isinstance(transfer, Skipped):
        stages.append(Stage('transfer', 'host-to-device transfer', None, None, transfer.skipped))
    else:
        pinned = results.device_copy
        stages.append(Stage('transfer', f"transfer to {transfer.device}, pinned", transfer.pinned.samples_s,
                            transfer.pinned.mb_s, '(the loader with ToDevice)' if pinned else ''))
        stages.append(Stage('transfer', f"transfer to {transfer.device}, pageable",
                            transfer.pageable.samples_s, transfer.pageable.mb_s,
                            '' if pinned else '(batch.to(device) in your loop)'))
        transfer_s = (transfer.pinned if pinned else transfer.pageable).samples_s
    if isinstance(model, Skipped):
        stages.append(Stage('model', 'model', None, None, model.skipped))
    else:
        stages.append(Stage('model', f"model {model.name} on {model.device}, {model.mode}",
                            model.samples_s))
        model_s = model.samples_s

    rates = {'storage': storage_s, 'decode': decode_s}
    if transfer_s is not None:
        rates['transfer'] = transfer_s
    if model_s is not None:
        rates['model'] = model_s
    bottleneck = min(rates, key=rates.get)
    current = rates[bottleneck]

    def overall(stage, new_rate):
        others = [r for k, r in rates.items() if k != stage]
        return min([new_rate] + others) / current

    # ---- the bottleneck line
    where = 'from page cache' if storage_source.startswith('page cache') else f"({storage_source})"
    if bottleneck == 'decode':
        line = (f"Bottleneck: decode + augment ({_threads(workers)}: {_num(decode_s)} samples/s; "
                f"storage gives {_num(storage_s)} samples/s {where})")
    elif bottleneck == 'storage':
        line = (f"Bottleneck: storage read ({_num(storage_s)} samples/s: {storage_source}; "
                f"decode + augment on {_threads(workers)} gives {_num(decode_s)} samples/s)")
    elif bottleneck == 'transfer':
        line = (f"Bottleneck: host-to-device transfer ({_num(transfer_s)} samples/s to {transfer.device}; "
                f"data loading gives {_num(min(storage_s, decode_s))} samples/s)")
    else:
        data = min(r for k, r in rates.items() if k != 'model')
        line = (f"Bottleneck: the model ({_num(model_s)} samples/s on {model.device}); data loading gives "
                f"{_num(data)} samples/s ({data / model_s:.1f}x what the model takes): data loading is not "
                f"your bottleneck")

    # ---- scaling (whatever the bottleneck)
    for measured, threads in ((chosen, workers), (all_cores, cores)):
        if measured and threads > 1:
            scaling = measured.samples_s / one.samples_s
            if scaling < POOR_SCALING * threads:
                notes.append(f"poor scaling: {_threads(threads)} give {_num(measured.samples_s)} samples/s, "
                             f"{scaling:.2f}x one thread ({_num(one.samples_s)}; ideal {threads}x). Other "
                             f"processes may be using the cores (see top), or the machine has fewer physical "
                             f"cores than logical ones")
                break

    # ---- recommendations
    if bottleneck == 'decode':
        if all_cores and workers < cores:
            gain = all_cores.samples_s / decode_s
            if gain >= MIN_GAIN:
                recs.append(Recommendation(
                    f"num_workers={cores} (--workers {cores})",
                    f"{_threads(cores)} measured {_num(all_cores.samples_s)} samples/s against "
                    f"{_num(decode_s)} with {workers}", round(overall('decode', all_cores.samples_s), 2)))
            elif not any(note.startswith('poor scaling') for note in notes):
                notes.append(f"more worker threads did not help here: {_threads(cores)} measured "
                             f"{_num(all_cores.samples_s)} samples/s against {_num(decode_s)} with {workers}")
        t_sample = 1.0 / one.samples_s               # one thread's time per sample
        for name, info in facts.images.items():
            if name not in crops or name not in jpeg or not info['jpeg_share']:
                continue
            j = jpeg[name]
            # JPEG decoding's part of one thread's time per sample (capped: the two are timed apart)
            jpeg_time = min(j.decode_s * info['jpeg_share'], 0.9 * t_sample)
            measured = (f"JPEG decoding measured {j.decode_s * 1e3:.2f} ms per image of field {name!r} "
                        f"({j.images} images), {jpeg_time / t_sample:.0%} of one thread's "
                        f"{t_sample * 1e3:.2f} ms per sample")

            def gain_after(saved):
                return t_sample / (t_sample - saved)

            crop = crops[name]
            if crop is not None:
                from ffcv_format.fields.image import target_size
                target = suggested_max_resolution(crop)
                sizes = [target_size(int(h), int(w), max_resolution=target)
                         for h, w in zip(info['heights'], info['widths'])]
                ratio = sum(h * w for h, w in sizes) / float((info['heights'] * info['widths']).sum())
                gain = gain_after(jpeg_time * (1 - ratio))
                if ratio < 0.9 and gain >= MIN_GAIN:
                    recs.append(Recommendation(
                        f"store at max_resolution={target} (ffcv convert --max-resolution {target})",
                        f"images are stored at a median {info['median_width']:.0f}x{info['median_height']:.0f} "
                        f"for crops of {crop[1]}x{crop[0]}; at most {target} px keeps {ratio:.0%} of the pixels "
                        f"to decode; {measured} (a lower bound: smaller crops also resize faster)",
                        round(overall('decode', decode_s * gain), 2)))
            if j.decode_q75_s < 0.9 * j.decode_s:
                gain = gain_after(jpeg_time * (1 - j.decode_q75_s / j.decode_s))
                if gain >= MIN_GAIN:
                    recs.append(Recommendation(
                        "lower JPEG quality (ffcv convert --jpeg-quality 75)",
                        f"the same images re-encoded at quality 75 decoded in {j.decode_q75_s * 1e3:.2f} ms "
                        f"({j.mean_bytes_q75 / 1024:.0f} KiB against {j.mean_bytes / 1024:.0f} KiB "
                        f"stored); {measured}", round(overall('decode', decode_s * gain), 2)))
            if info['jpeg_share'] >= 0.5:
                gain = gain_after(jpeg_time * 0.5)       # half of the JPEG images become raw
                moved = facts.num_samples * info['jpeg_share'] * 0.5
                new_size = facts.file_size + moved * (j.mean_pixels * info['channels'] - j.mean_bytes)
                fits = memory is None or new_size <= memory
                new_storage = (storage.warm.mb_s * 1e6 / (new_size / facts.num_samples) if fits
                               else storage_s * facts.file_size / new_size)
                if gain >= MIN_GAIN:
                    after = dict(rates, decode=decode_s * gain, storage=new_storage)
                    recs.append(Recommendation(
                        "store half the images raw (ffcv convert --write-mode proportion "
                        "--compress-probability 0.5)",
                        f"raw images need no decoding; {measured}; the file grows to about {human_size(new_size)}"
                        + ('' if fits else ', more than the memory available'),
                        round(min(after.values()) / current, 2)))
    elif bottleneck == 'storage':
        if not os_cache and (memory is None or facts.file_size <= memory):
            new = decode['chosen'].samples_s          # that loader is os_cache=True, reading memory
            recs.append(Recommendation(
                "os_cache=True (--os-cache), or a process_cache_limit of at least the file's size",
                f"the file ({human_size(facts.file_size)}) fits in the memory available "
                f"({human_size(memory) if memory else 'unknown'}); the loader with os_cache=True measured "
                f"{_num(new)} samples/s against {_num(configured.samples_s)} as configured",
                round(overall('storage', new), 2)))
        quasi = decode.get('configured_quasi')
        if not os_cache and order == 'random' and quasi:
            new = quasi.samples_s
            if new / storage_s >= MIN_GAIN:
                recs.append(Recommendation(
                    "order=OrderOption.QUASI_RANDOM (--order quasi_random)",
                    f"with RANDOM the process cache reads about {per_sample / 1e6:.2f} MB per sample "
                    f"({bps / 1e3:.1f} kB stored per sample); the loader as configured but with QUASI_RANDOM, "
                    f"which reads each page once an epoch, measured {_num(new)} samples/s against "
                    f"{_num(configured.samples_s)}", round(overall('storage', new), 2)))
        if os_cache and memory is not None and facts.file_size > memory and order == 'random':
            new = storage_at(os_cache=False, order='quasi_random')[0]
            if new / storage_s >= MIN_GAIN:
                recs.append(Recommendation(
                    "os_cache=False with order=OrderOption.QUASI_RANDOM",
                    f"the file ({human_size(facts.file_size)}) is larger than the memory available "
                    f"({human_size(memory)}); random samples from disk measured {_num(storage_s)} samples/s, "
                    f"pages in random order {_num(new)} samples/s", round(overall('storage', new), 2)))
        if not recs:
            recs.append(Recommendation(
                "a faster disk, or a smaller file (lower max_resolution or JPEG quality)",
                f"storage gives {_num(storage_s)} samples/s ({storage_source}) at {bps / 1e3:.1f} kB per "
                f"sample", None))
    elif bottleneck == 'transfer':
        pinned = results.device_copy
        if not pinned:
            new = transfer.pinned.samples_s
            recs.append(Recommendation(
                f"end the pipelines with ToDevice('{transfer.device}') (pinned memory, copies overlapped)",
                f"pinned copies measured {transfer.pinned.mb_s:,.0f} MB/s against "
                f"{transfer.pageable.mb_s:,.0f} MB/s pageable", round(overall('transfer', new), 2)))
        floats = transfer.float_image_bytes_per_sample
        if floats > 0.5 * transfer.bytes_per_sample:
            gain = transfer.bytes_per_sample / (transfer.bytes_per_sample - floats * 3 / 4)
            recs.append(Recommendation(
                "copy uint8 images and normalize on the GPU (ToDevice before NormalizeImage)",
                f"a batch is {transfer.bytes_per_sample / 1e3:.1f} kB per sample, {floats / 1e3:.1f} kB of "
                f"it float images, 4x the bytes of uint8 ones", round(overall('transfer', transfer_s * gain), 2)))
    else:
        recs.append(Recommendation(
            "nothing in data loading",
            f"the model takes {_num(model_s)} samples/s on {model.device}; data loading gives "
            f"{_num(min(r for k, r in rates.items() if k != 'model'))}", None))

    # ---- first epoch, eviction
    if storage_source.startswith(('page cache', 'process cache (holds')):
        first_epoch = None
        if order == 'random' and storage.cold_random_samples:
            first_epoch = storage.cold_random_samples.samples_s if os_cache else \
                storage.cold_random_pages.samples_s
        elif order == 'quasi_random' and storage.cold_random_pages:
            first_epoch = storage.cold_random_pages.samples_s
        elif storage.cold_sequential:
            first_epoch = storage.cold_sequential.samples_s
        if first_epoch is not None and first_epoch < min(r for k, r in rates.items() if k != 'storage'):
            notes.append(f"the first epoch reads from disk: about {_num(first_epoch)} samples/s cold, slower "
                         f"than the other stages; later epochs come from memory")
    if model_s is not None and str(model.device).startswith('cpu'):
        notes.append("the model was timed on the CPU, alone: in training it shares the cores with the "
                     "loader's worker threads, so both will be slower than measured")
    if storage.not_evicted_because:
        notes.append(f"cold storage figures: the file could not be dropped from the page cache "
                     f"({storage.not_evicted_because}); they may be reads from memory")
    if configured and configured.samples_s < 0.7 * min(rates.values()):
        notes.append(f"the loader as configured gives {_num(configured.samples_s)} samples/s, below every "
                     f"stage measured alone")
    return Analysis(stages=stages, bottleneck=bottleneck, bottleneck_line=line, recommendations=recs,
                    notes=notes, storage_at_settings=storage_eff, rates=rates)
