"""The doctor's report: :class:`Report`, its text (``render()``) and JSON (``to_json()``)."""
import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np
from ffcv_format.units import human_size

from .analysis import STAGE_NAMES, _gain, _num, _threads

@dataclass
class Report:
    """What :func:`diagnose` found. ``bottleneck`` is a key of :data:`STAGE_NAMES`;
    ``measurements`` holds every measured number; ``render()`` gives the text report and
    ``to_dict()``/``to_json()`` the machine-readable one."""
    path: str
    num_samples: int
    file_size: int
    fields: dict
    pipelines: dict
    pipeline_origin: str
    settings: dict
    measurements: dict
    stages: list
    bottleneck: str
    bottleneck_line: str
    recommendations: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def to_dict(self):
        return {'path': self.path, 'num_samples': self.num_samples, 'file_size': self.file_size,
                'fields': self.fields, 'pipelines': self.pipelines, 'pipeline_origin': self.pipeline_origin,
                'settings': self.settings, 'measurements': _plain(self.measurements),
                'stages': [dataclasses.asdict(s) for s in self.stages],
                'bottleneck': self.bottleneck, 'bottleneck_label': STAGE_NAMES[self.bottleneck],
                'bottleneck_line': self.bottleneck_line,
                'recommendations': [dataclasses.asdict(r) for r in self.recommendations], 'notes': self.notes}

    def to_json(self, indent=1):
        return json.dumps(self.to_dict(), indent=indent)

    def _field_text(self, name, kind):
        info = self.measurements.get('images', {}).get(name)
        if not info:
            return f"{name} ({kind})"
        modes = ', '.join(f"{mode} {info[mode + '_share']:.0%}" for mode in ('jpeg', 'raw', 'png')
                          if info[mode + '_share'])
        return f"{name} ({kind}: {modes}, median {info['median_width']:.0f}x{info['median_height']:.0f})"

    def render(self):
        s = self.settings
        lines = [f"ffcv doctor: {self.path}",
                 (f"  samples    {self.num_samples:,}, {human_size(self.file_size)} "
                  f"({human_size(self.file_size / self.num_samples)} per sample)"),
                 "  fields     " + ', '.join(self._field_text(n, k) for n, k in self.fields.items()),
                 f"  pipeline   {self.pipeline_origin}"]
        width = max(len(n) for n in self.pipelines)
        lines += [f"               {n:<{width}} = {text}" for n, text in self.pipelines.items()]
        lines.append(f"  settings   batch_size {s['batch_size']}, order {s['order'].upper()}, "
                     f"os_cache={s['os_cache']}, {_threads(s['workers'])} ({s['cores']} cores), "
                     f"device {s['device']}")
        lines.append('')
        label_width = max(len(st.label) for st in self.stages)
        lines.append(f"  {'stage':<{label_width}}  {'samples/s':>12}  {'MB/s':>9}")
        for st in self.stages:
            if st.samples_s is None:
                lines.append(f"  {st.label:<{label_width}}  {st.note}")
                continue
            mb = f"{st.mb_s:>9,.0f}" if st.mb_s is not None else f"{'':>9}"
            note = f"  {st.note}" if st.note else ''
            lines.append(f"  {st.label:<{label_width}}  {_num(st.samples_s):>12}  {mb}{note}")
        lines += ['', self.bottleneck_line]
        if self.recommendations:
            lines += ['', 'What to change:']
            for r in self.recommendations:
                gain = f" (expected: {_gain(r.expected_gain)})" if r.expected_gain else ''
                lines.append(f"  - {r.setting}{gain}: {r.why}")
        if self.notes:
            lines += ['', 'Notes:']
            lines += [f"  - {note}" for note in self.notes]
        return '\n'.join(lines)


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value
