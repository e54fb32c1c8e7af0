"""Turn the suite's JSON into ``docs/benchmarks.md`` (tables, targets) and its plots (PNG).

    python benchmarks/report.py [RESULTS.json] [--docs docs]

Every ratio is the median of the per-round ratios of two contenders timed in the same run.
"""
import argparse
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OURS = 'ours'


def ratio(results, a, b):
    """Median over rounds of rate(a) / rate(b), and the per-round ratios; None if either is missing."""
    ra, rb = results.get(a, {}), results.get(b, {})
    if not ra.get('rates') or not rb.get('rates'):
        return None, []
    per_round = [x / y for x, y in zip(ra['rates'], rb['rates'])]
    return statistics.median(per_round), per_round


def fmt_rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def mib(nbytes):
    return f"{nbytes / 2**20:,.0f} MiB" if nbytes else '-'


class Report:
    def __init__(self, data):
        self.data = data
        self.meta, self.workloads = data['meta'], data['workloads']
        self.lines = []
        self.targets = []  # (target, figure, met)

    def out(self, *lines):
        self.lines.extend(lines)

    # ------------------------------------------------------------------ targets

    def target(self, label, value, threshold, above=True, unit='x', detail=''):
        if value is None:
            self.targets.append((label, 'not measured' + (f": {detail}" if detail else ''), 'n/a'))
            return
        met = value >= threshold if above else value <= threshold
        figure = f"{value:.2f}{unit}" + (f" ({detail})" if detail else '')
        self.targets.append((label, figure, 'met' if met else '**not met**'))

    def ratio_target(self, workload, other, threshold, label, missing='did not run'):
        results = self.workloads.get(workload, {}).get('results', {})
        value, per_round = ratio(results, OURS, other)
        detail = (f"rounds {min(per_round):.2f}-{max(per_round):.2f}" if per_round
                  else results.get(other, {}).get('error', missing if results else 'did not run'))
        self.target(label, value, threshold, detail=detail)

    def gil_targets(self):
        gil = self.workloads.get('gil')
        if not gil:
            return
        target = gil['params'].get('target_us', 3.0)
        n = self.meta['workers']
        for workload, title in (('jpeg256', 'JPEG max 256, RRC 224'), ('jpeg512', 'JPEG max 512, RRC 224')):
            suffix = f"{n} thread{'s' * (n > 1)}"
            r = gil['results'].get(f"{workload}, {OURS}, {suffix}", {})
            base = gil['results'].get(f"{workload}, ours, baseline, {suffix}", {})
            label = f"GIL held by the loader's threads per image, {title}, {suffix}: <= {target:g} µs"
            if r.get('gil_us_per_image') is None:
                self.target(label, None, target, detail=r.get('error', 'did not run'))
                continue
            lo, hi = r['gil_us_per_image_95']
            detail = f"95% {lo:.1f}-{hi:.1f}, {r['loader_samples']} samples"
            if base.get('gil_us_per_image') is not None:
                detail += f"; baseline {base['gil_us_per_image']:.1f} µs"
            self.target(label, r['gil_us_per_image'], target, above=False, unit=' µs', detail=detail)

    def collect_targets(self):
        self.ratio_target('jpeg256', 'FFCV 1.0.2', 1.25, "JPEG max 256, RRC 224: >= 1.25x FFCV 1.0.2")
        self.ratio_target('jpeg256', 'DataLoader + PIL', 4.5, "JPEG max 256, RRC 224: >= 4.5x DataLoader + PIL")
        self.ratio_target('jpeg256', 'decode ceiling', 0.90, "JPEG max 256, RRC 224: >= 0.90 of the decode ceiling")
        self.ratio_target('jpeg512', 'FFCV 1.0.2', 1.15, "JPEG max 512, RRC 224: >= 1.15x FFCV 1.0.2")
        self.ratio_target('center512', 'ours, baseline', 1.5,
                          "centre-crop validation on 512-px files: >= 1.5x the baseline (before scaled decoding)",
                          missing='no --baseline in this run')
        self.gil_targets()
        self.ratio_target('cifar', 'FFCV 1.0.2', 1.25, "CIFAR-like raw 32x32: >= 1.25x FFCV 1.0.2")
        self.ratio_target('cifar', 'DataLoader + PIL', 20, "CIFAR-like raw 32x32: >= 20x DataLoader + PIL")
        for name in ('ndarray_300KiB', 'bytes_300KiB'):
            for order in ('sequential', 'random'):
                results = self.workloads.get(f'{name}_{order}', {}).get('results', {})
                default, _ = ratio(results, OURS, 'memory copy')
                process, _ = ratio(results, 'ours, os_cache=False', 'memory copy')
                best = max((v for v in (default, process) if v is not None), default=None)
                detail = ' / '.join(f"{label} {v:.2f}" for label, v in (('os_cache=True', default),
                                                                         ('os_cache=False', process)) if v is not None)
                self.target(f"{name.replace('_', ' ')}, {order}: >= 0.5 of memory-copy bandwidth", best, 0.5,
                            detail=detail or results.get('memory copy', {}).get('error', 'did not run'))
        start = self.workloads.get('start', {}).get('results', {})
        warm = start.get(OURS, {}).get('warm', {})
        ffcv_warm = start.get('ffcv102', {}).get('warm', {})
        self.target("first batch, warm numba cache: < 2 s", warm.get('first_batch_s'), 2.0, above=False, unit=' s',
                    detail=f"FFCV 1.0.2: {ffcv_warm['first_batch_s']:.1f} s" if 'first_batch_s' in ffcv_warm else '')
        jpeg = self.workloads.get('jpeg256', {}).get('results', {})
        ours_rss, ffcv_rss = jpeg.get(OURS, {}).get('peak_rss'), jpeg.get('FFCV 1.0.2', {}).get('peak_rss')
        self.target("peak RSS (JPEG max 256): <= 0.5 of FFCV 1.0.2's",
                    ours_rss / ffcv_rss if ours_rss and ffcv_rss else None, 0.5, above=False, unit='',
                    detail=f"{mib(ours_rss)} vs {mib(ffcv_rss)}" if ours_rss and ffcv_rss else '')
        one = [n for n in jpeg if n.startswith('ours, 1 thread')]
        if one:
            value, per_round = ratio(jpeg, OURS, one[0])
            self.target(f"scaling: {self.meta['workers']} threads >= 1.85x one thread", value, 1.85,
                        detail=f"rounds {min(per_round):.2f}-{max(per_round):.2f}" if per_round else '')

    # ------------------------------------------------------------------ sections

    def header(self):
        m = self.meta
        self.out("# Benchmarks", "",
                 "Measured by `benchmarks/suite.py` (see `benchmarks/README.md`); this page is written by "
                 "`benchmarks/report.py` from its results. Every figure is the median of several rounds; "
                 "every ratio is the median of per-round ratios between contenders timed in the same run, "
                 "each in its own fresh process (peers in their own virtual environments).", "",
                 f"- date: {m['date']}",
                 f"- machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']:.0f} GiB, {m['system']}",
                 f"- settings: {m['workers']} threads for every loader (= worker processes of the DataLoader), "
                 f"{m['rounds']} timed rounds after a warm-up epoch",
                 f"- command: `{m['command']}` then `python benchmarks/report.py`"
                 + (f"; {m['seconds'] / 60:.0f} minutes" if 'seconds' in m else ''), "")
        self.out("| peer | versions |", "|---|---|")
        names = {'ours': 'this project', 'ffcv102': 'FFCV 1.0.2', 'dali': 'NVIDIA DALI (CPU only)'}
        for key, peer in m['peers'].items():
            text = (', '.join(f"{k} {v}" for k, v in peer['versions'].items()) if not peer['unavailable']
                    else f"could not be set up: {peer['unavailable']}")
            self.out(f"| {names.get(key, key)} | {text} |")
        self.out("")

    def targets_section(self):
        self.collect_targets()
        self.out("## Targets", "", "| target | measured | |", "|---|---|---|")
        for label, figure, met in self.targets:
            self.out(f"| {label} | {figure} | {met} |")
        self.out("")

    def workload_table(self, name, title, unit='images/s', bytes_per_sample=None):
        w = self.workloads.get(name)
        if not w:
            return
        results = w['results']
        load = results.get('_load', {})
        self.out(f"### {title}", "")
        gb = bytes_per_sample is not None
        self.out(f"| contender | {unit} | {'GB/s | ' if gb else ''}rounds | vs ours | first batch | peak RSS | "
                 f"tree PSS |", f"|---|---:|{'---:|' if gb else ''}---|---:|---:|---:|---:|")
        for cname, r in results.items():
            if cname.startswith('_'):
                continue
            if 'error' in r and not r.get('rates'):
                self.out(f"| {cname} | not available: {r['error'].replace('|', '/')} |" + ' |' * (6 + gb))
                continue
            value, _ = ratio(results, cname, OURS)
            rounds = ' '.join(fmt_rate(x) for x in r['rates'])
            first = f"{r['first_batch_s']:.2f} s" if 'first_batch_s' in r else '-'
            gbs = f"{r['rate'] * bytes_per_sample / 1e9:.2f} | " if gb else ''
            self.out(f"| {cname} | {fmt_rate(r['rate'])} | {gbs}{rounds} | "
                     f"{value:.2f} | {first} | {mib(r.get('peak_rss'))} | {mib(r.get('tree_pss'))} |")
        if load:
            self.out("", f"While measuring ({load['wall_s']:.0f} s), the cores were busy {load['busy']:.0%} of the "
                     f"time; other processes took {load['others_cores']:.2f} cores on average.")
        ceiling = results.get('decode ceiling', {})
        if ceiling.get('single_thread_rate'):
            self.out("", f"Decode ceiling: {self.meta['workers']} x {fmt_rate(ceiling['single_thread_rate'])} "
                     f"images/s of one thread; the same loop run by {self.meta['workers']} threads at once: "
                     f"{fmt_rate(ceiling.get('parallel_rate', 0))} images/s.")
        self.out("")

    def sections(self):
        d = self.data['data']
        self.out("## Results", "")
        if 'imagenet_like' in d:
            self.out(f"ImageNet-like images: {d['imagenet_like']['describe']} (`benchmarks/imagenet_like.py`).", "")
        for key, title in (('jpeg256', 'JPEG stored at max 256 px, quality 90'),
                           ('jpeg512', 'JPEG stored at max 512 px, quality 90')):
            if key in d:
                f = d[key]
                self.out(f"- {title}: {f['samples']} images, median {f['median_size'][0]}x{f['median_size'][1]}, "
                         f"{f['mean_sample_bytes'] / 1024:.1f} KiB each, file {mib(f['file_bytes'])}")
        self.out("")
        self.workload_table('jpeg256', 'JPEG max 256 -> random resized crop 224 + flip, uint8 NCHW, batch 256')
        self.workload_table('jpeg512', 'JPEG max 512 -> random resized crop 224 + flip, uint8 NCHW, batch 256')
        self.workload_table('center512', 'JPEG max 512 -> centre crop 224 (ratio 224/256), no flip, uint8 NCHW, '
                            'batch 256, sequential order (validation)')
        for size in (160, 192):
            self.workload_table(f'progressive{size}', f'Progressive resizing: JPEG max 256 -> RRC {size} + flip')
        if 'cifar' in d:
            self.out(f"CIFAR-like: {d['cifar']['samples']} raw 32x32 images cut from the same photos, "
                     f"file {mib(d['cifar']['file_bytes'])}.", "")
        self.workload_table('cifar', 'CIFAR-like raw 32x32: flip + translate 2 px + normalize (float32 NCHW), '
                            'batch 512')
        for name in ('ndarray_3KiB', 'ndarray_300KiB', 'bytes_300KiB'):
            if name not in d:
                continue
            for order in ('sequential', 'random'):
                self.workload_table(f'{name}_{order}', f"{name.replace('_', ' ')} ({d[name]['samples']} samples, "
                                    f"file {mib(d[name]['file_bytes'])}), {order} order",
                                    unit='samples/s', bytes_per_sample=d[name]['mean_sample_bytes'])
        self.workload_table('convert', 'Conversion: JPEG files -> .beton (JPEG max 256, quality 90)')
        self.gil_table()
        start = self.workloads.get('start')
        if start:
            self.out("### Start: `Loader(...)` to the first batch, fresh process", "",
                     "| library | numba cache | imports | first batch |", "|---|---|---:|---:|")
            for peer, runs in start['results'].items():
                if 'error' in runs:
                    self.out(f"| {peer} | | not available: {runs['error']} | |")
                    continue
                for kind, r in runs.items():
                    if 'first_batch_s' in r:
                        self.out(f"| {peer} | {kind} | {r['import_s']:.2f} s | {r['first_batch_s']:.2f} s |")
                    else:
                        self.out(f"| {peer} | {kind} | not available: {r.get('error')} | |")
            self.out("")

    def gil_table(self):
        gil = self.workloads.get('gil')
        if not gil:
            return
        p = gil['params']
        rate = p['sampling_rate']
        self.out("### GIL held by the loader per image (py-spy)", "",
                 f"Each row: a fresh contender process (the workload's pipeline, one warm-up epoch) runs epochs "
                 f"without a break while `py-spy record --gil --idle --threads "
                 f"{'--nonblocking ' if p['mode'] == 'nonblocking' else ''}--rate {rate} --format raw` "
                 f"({p.get('py_spy_version', 'py-spy')}) is attached to it for "
                 f"{p['sampled_windows']} window{'s' * (p['sampled_windows'] > 1)} of {p['window_s']:g} s, "
                 f"each next to an unsampled window as long (ours and the baseline of a workload take turns, "
                 f"as in the timed rounds). py-spy records a sample only when some thread holds the GIL, "
                 f"naming it; its samples fall at random times ({rate}/s on average), so a thread's GIL-held "
                 f"seconds are its samples / {rate} (*unread*: samples py-spy could not read, in no thread). "
                 f"*Loader threads*: every Python thread but the main one "
                 f"(the loader's workers); per image: their GIL seconds / the images delivered in the sampled "
                 f"windows; the interval is the exact 95% Poisson interval of the sample count. *Main thread*: "
                 f"the training loop (here an empty loop over the batches) and the loader's `__next__`, as a "
                 f"share of the time. *Ceiling*: 1 / (loader GIL seconds per image), the images/s one process "
                 f"could not pass however many threads it had. GIL time is wall time: a thread preempted "
                 f"while it holds the GIL still holds it, so load from other processes (*others*, cores) "
                 f"inflates it. The images/s without and with py-spy come from the same process "
                 f"(unsampled and sampled windows).", "",
                 "| workload | loader | threads | loader GIL per image | 95% | target | loader samples | "
                 "main thread GIL share (µs/image) | ceiling, images/s | images/s without / with py-spy | "
                 "cores: loader / py-spy / others |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        titles = {'jpeg256': 'JPEG max 256, RRC 224', 'jpeg512': 'JPEG max 512, RRC 224',
                  'cifar': 'CIFAR-like raw 32x32'}
        for name, r in gil['results'].items():
            head = (f"| {titles.get(r.get('workload'), r.get('workload'))} | {r.get('contender')} | "
                    f"{r.get('threads')} |")
            target = f"<= {r['target_us']:g} µs" if r.get('target_us') else '-'
            if r.get('gil_us_per_image') is None:
                self.out(head + f" not available: {str(r.get('error')).replace('|', '/')} |" + ' |' * 7)
                continue
            lo, hi = r['gil_us_per_image_95']
            self.out(head + f" {r['gil_us_per_image']:.1f} µs | {lo:.1f}-{hi:.1f} | {target} | "
                     f"{r['loader_samples']} of {r['expected_samples']:,.0f}"
                     + (f", {r['pyspy_errors']} unread" if r.get('pyspy_errors') else '') + " | "
                     f"{r['main_gil_share']:.1%} ({r['main_us_per_image']:.1f}) | {fmt_rate(r['ceiling_rate'])} | "
                     f"{fmt_rate(r['rate_unsampled'])} / {fmt_rate(r['rate_sampled'])} "
                     f"({-r['slowdown']:+.0%}) | {r['contender_cores']:.2f} / {r['pyspy_cores']:.2f} / "
                     f"{r['others_cores']:.2f} |")
        hot = [(name, r) for name, r in gil['results'].items() if r.get('hot')]
        if hot:
            self.out("", "Where the loader threads held the GIL (innermost Python frame, samples), per row:", "")
            for name, r in hot:
                self.out(f"- {name}: " + '; '.join(f"`{frame}` {n}" for frame, n in r['hot'][:5]))
        self.out("")

    # ------------------------------------------------------------------ plots

    def plots(self, folder):
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        os.makedirs(folder, exist_ok=True)
        made = []

        def bars(ax, names, workloads, value, labels=None, fontsize=None):
            """Grouped bars: a group per workload, a bar per contender; ``value(workload, result)``."""
            import numpy as np
            width = 0.8 / max(1, len(names))
            x = np.arange(len(workloads))
            for i, cname in enumerate(names):
                ys = [value(w, self.workloads[w]['results'].get(cname, {})) or 0 for w in workloads]
                ax.bar(x + i * width - 0.4 + width / 2, ys, width, label=cname)
            ax.set_xticks(x, labels or workloads, fontsize=fontsize)
            ax.legend(fontsize=8)

        image = [w for w in ('jpeg256', 'jpeg512', 'progressive192', 'progressive160') if w in self.workloads]
        if image:
            names = []
            for w in image:
                names += [n for n, r in self.workloads[w]['results'].items()
                          if not n.startswith('_') and r.get('rates') and n not in names and ', ' not in n]
            fig, ax = plt.subplots(figsize=(9, 4.5))
            bars(ax, names, image, lambda w, r: r.get('rate'))
            ax.set_ylabel('images/s')
            ax.set_title(f"JPEG decode + random resized crop + flip ({self.meta['workers']} threads)")
            made.append(self._save(fig, folder, 'images.png'))
        arrays = [w for w in self.workloads if w.startswith(('ndarray', 'bytes'))]
        if arrays:
            d = self.data['data']
            fig, ax = plt.subplots(figsize=(10, 4.5))
            names = [n for n in ('ours', 'ours, os_cache=False', 'FFCV 1.0.2', 'memory copy', 'copy from page cache')
                     if any(self.workloads[w]['results'].get(n, {}).get('rates') for w in arrays)]

            def gbps(w, r):
                return (r.get('rate') or 0) * d[w.rsplit('_', 1)[0]]['mean_sample_bytes'] / 1e9

            bars(ax, names, arrays, gbps, labels=[w.replace('_', '\n', 1) for w in arrays], fontsize=8)
            ax.set_ylabel('GB/s')
            ax.set_title('Non-image fields: bandwidth')
            made.append(self._save(fig, folder, 'arrays.png'))
        jpeg = self.workloads.get('jpeg256', {}).get('results', {})
        if jpeg.get(OURS, {}).get('rates'):
            fewer = [(int(n.split(', ')[1].split()[0]), r['rate']) for n, r in jpeg.items()
                     if n.startswith('ours, ') and n.endswith(('thread', 'threads')) and r.get('rates')]
            threads = sorted(fewer + [(self.meta['workers'], jpeg[OURS]['rate'])])
            fig, ax = plt.subplots(figsize=(5, 4))
            ax.plot([t for t, _ in threads], [r for _, r in threads], 'o-', label='ours')
            one = threads[0][1] / threads[0][0]
            ax.plot([t for t, _ in threads], [one * t for t, _ in threads], '--', label='linear from 1 thread')
            ceiling = jpeg.get('decode ceiling', {})
            if ceiling.get('single_thread_rate'):
                ax.plot([t for t, _ in threads], [ceiling['single_thread_rate'] * t for t, _ in threads], ':',
                        label='decode ceiling x threads')
            ax.set_xlabel('threads')
            ax.set_ylabel('images/s')
            ax.set_title('Scaling (JPEG max 256, RRC 224)')
            ax.legend(fontsize=8)
            made.append(self._save(fig, folder, 'scaling.png'))
            mem = [(n, r) for n, r in jpeg.items() if not n.startswith('_') and r.get('tree_pss') and ', ' not in n]
            if mem:
                fig, ax = plt.subplots(figsize=(7, 4))
                labels = [n for n, _ in mem] + ['.beton file']
                ax.bar(labels, [r['tree_pss'] / 2**20 for _, r in mem] + [self.data['data']['jpeg256']['file_bytes']
                                                                         / 2**20])
                ax.set_ylabel('MiB (peak PSS of the process tree)')
                ax.set_title('Memory while loading (JPEG max 256)')
                ax.tick_params(axis='x', labelsize=8)
                made.append(self._save(fig, folder, 'memory.png'))
        return made

    @staticmethod
    def _save(fig, folder, name):
        fig.tight_layout()
        fig.savefig(os.path.join(folder, name), dpi=100)
        import matplotlib.pyplot as plt
        plt.close(fig)
        return name

    def render(self, docs):
        self.header()
        self.targets_section()
        made = self.plots(os.path.join(docs, 'benchmarks'))
        if made:
            self.out("## Plots", "", *[f"![{name}](benchmarks/{name})" for name in made], "")
        self.sections()
        return '\n'.join(self.lines) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('results', nargs='?', default=os.path.join(HERE, 'results', 'latest.json'))
    parser.add_argument('--docs', default=os.path.join(ROOT, 'docs'), help='where benchmarks.md goes')
    parser.add_argument('--notes', default=os.path.join(HERE, 'notes.md'),
                        help='hand-written analysis appended to the page (default benchmarks/notes.md)')
    args = parser.parse_args()
    with open(args.results) as f:
        data = json.load(f)
    text = Report(data).render(args.docs)
    if os.path.exists(args.notes):
        with open(args.notes) as f:
            text += '\n' + f.read()
    path = os.path.join(args.docs, 'benchmarks.md')
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)
    print(f"wrote {path}")


if __name__ == '__main__':
    main()
