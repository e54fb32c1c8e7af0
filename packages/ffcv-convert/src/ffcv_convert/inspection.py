"""Looking into a ``.beton`` file: a summary of its fields and space, and contact sheets."""
import os

import numpy as np
from ffcv_format import ImageField, Reader
from ffcv_format.fields.image import MODE_JPEG, MODE_PNG, MODE_RAW
from ffcv_format.units import human_size

__all__ = ['summarize', 'format_summary', 'contact_sheet']

_MODE_NAMES = {MODE_JPEG: 'jpeg', MODE_RAW: 'raw', MODE_PNG: 'png'}


def summarize(path, custom_handlers=None):
    """A dict describing ``path``: fields, sample count, bytes per field, page use.

    >>> summarize('train.beton')['num_samples']            # doctest: +SKIP
    1281167
    """
    reader = Reader(path, custom_handlers=custom_handlers)
    try:
        meta = reader.metadata
        n = reader.num_samples
        fields = []
        problems = []
        for name in reader.field_names:
            handler = reader.handlers[name]
            described = repr(handler)
            if isinstance(handler, ImageField):  # how each image is stored is per sample: see modes
                described = f"{type(handler).__name__}(channels={handler.channels})"
            info = {'name': name, 'type': type(handler).__name__, 'repr': described,
                    'metadata_bytes': int(handler.metadata_type.itemsize)}
            pointer_names = getattr(handler, 'pointer_names', ())
            stored = np.zeros(n, dtype=np.int64)
            for _, _, sizes in reader.extents(name, problems=problems):
                stored += np.maximum(sizes, 0)
            info['data_bytes'] = int(stored.sum())
            if n and pointer_names:
                info['bytes_per_sample'] = {'min': int(stored.min()), 'mean': float(stored.mean()),
                                            'max': int(stored.max())}
            if isinstance(handler, ImageField) and n:
                column = meta[name]
                modes, counts = np.unique(np.asarray(column['mode']), return_counts=True)
                info['modes'] = {_MODE_NAMES.get(int(m), str(int(m))): int(c) for m, c in zip(modes, counts)}
                widths, heights = np.asarray(column['width']), np.asarray(column['height'])
                info['width'] = {'min': int(widths.min()), 'median': float(np.median(widths)),
                                 'max': int(widths.max())}
                info['height'] = {'min': int(heights.min()), 'median': float(np.median(heights)),
                                  'max': int(heights.max())}
                info['channels'] = handler.channels
            elif type(handler).__name__ in ('IntField', 'FloatField') and n:
                values = np.asarray(meta[name])
                info['values'] = {'min': values.min().item(), 'max': values.max().item(),
                                  'distinct': int(np.unique(values).size)}
            fields.append(info)
        table = reader.alloc_table
        allocated = int(np.minimum(np.asarray(table['size']), np.uint64(reader.page_size)).sum())
        data_start, data_end = reader.data_region
        num_pages = -(-(data_end - data_start) // reader.page_size) if table.size else 0
        return {
            'path': os.fspath(path), 'file_size': reader.file_size, 'num_samples': n,
            'page_size': reader.page_size, 'num_pages': int(num_pages),
            'num_allocations': int(table.size), 'allocated_bytes': allocated,
            'page_fill': allocated / (num_pages * reader.page_size) if num_pages else None,
            'metadata_bytes': int(reader.metadata_end - reader.metadata_start),
            'alloc_table_bytes': int(reader.file_size - reader.alloc_table_ptr),
            'fields': fields,
            # data pointers that are not as they must be (`ffcv verify` checks everything)
            'problems': [f"sample {sample}, {message}" for sample, message in problems[:10]],
            'num_problems': len(problems),
        }
    finally:
        reader.close()


def format_summary(summary):
    """The text ``ffcv inspect`` prints for a :func:`summarize` result."""
    s = summary
    lines = [f"{s['path']}: {s['num_samples']} samples, {len(s['fields'])} field(s), "
             f"{human_size(s['file_size'])}"]
    lines.append("fields:")
    for f in s['fields']:
        line = f"  {f['name']:<16} {f['repr']}"
        if f.get('bytes_per_sample'):
            b = f['bytes_per_sample']
            line += (f"\n  {'':<16} stored: {human_size(f['data_bytes'])} in all, per sample "
                     f"{human_size(b['min'])} .. {human_size(b['max'])} (mean {human_size(b['mean'])})")
        if 'modes' in f:
            modes = ', '.join(f"{mode} {count}" for mode, count in f['modes'].items())
            line += (f"\n  {'':<16} images: {modes}; width {f['width']['min']}..{f['width']['max']} "
                     f"(median {f['width']['median']:g}), height {f['height']['min']}..{f['height']['max']} "
                     f"(median {f['height']['median']:g})")
        if 'values' in f:
            v = f['values']
            line += f"\n  {'':<16} values {v['min']} .. {v['max']}, {v['distinct']} distinct"
        lines.append(line)
    fill = f", {s['page_fill']:.1%} filled" if s['page_fill'] is not None else ""
    lines.append(f"pages: {s['num_pages']} of {human_size(s['page_size'])}{fill} "
                 f"({human_size(s['allocated_bytes'])} of data in {s['num_allocations']} allocations)")
    lines.append(f"tables: metadata {human_size(s['metadata_bytes'])}, allocation table "
                 f"{human_size(s['alloc_table_bytes'])}")
    if s.get('num_problems'):
        lines.append(f"PROBLEMS: {s['num_problems']} data pointer(s) are not as they must be (the file is "
                     f"damaged; `ffcv verify` lists everything), e.g.:")
        lines += [f"  {problem}" for problem in s['problems'][:3]]
    return '\n'.join(lines)


#: contact sheet geometry and colours (tests count tiles by these)
SHEET_BACKGROUND = (255, 255, 255)
TILE_FRAME = (40, 40, 40)
TILE_SIZE = 128
CAPTION_HEIGHT = 18
GUTTER = 8


def contact_sheet(path, output, count=16, field=None, label_field=None, columns=None,
                  tile_size=TILE_SIZE, custom_handlers=None):
    """Write a PNG grid of ``count`` images of ``path`` (evenly spaced samples) to ``output``.

    >>> contact_sheet('train.beton', 'sheet.png', 16)     # doctest: +SKIP
    16

    Each tile is a dark frame holding the image (scaled to fit, aspect kept) and a caption
    with the sample index and the label (``label_field``, default the first integer
    field); tiles are separated by white gutters. ``field`` picks the image field
    (default: the first). Returns the number of tiles drawn.
    """
    import cv2
    reader = Reader(path, custom_handlers=custom_handlers)
    try:
        images = [n for n in reader.field_names if isinstance(reader.handlers[n], ImageField)]
        if field is None:
            if not images:
                raise ValueError(f"{os.fspath(path)!r} has no image field (its fields: "
                                 f"{', '.join(reader.field_names)}); a contact sheet shows images")
            field = images[0]
        elif field not in images:
            raise ValueError(f"{field!r} is not an image field of {os.fspath(path)!r}; image fields: "
                             f"{', '.join(images) or 'none'}")
        if label_field is None:
            label_field = next((n for n in reader.field_names
                                if type(reader.handlers[n]).__name__ == 'IntField'), None)
        if count < 1:
            raise ValueError(f"the number of samples to show must be at least 1, got {count}")
        n = reader.num_samples
        if n == 0:
            raise ValueError(f"{os.fspath(path)!r} has no samples to show")
        count = min(count, n)
        indices = np.unique(np.linspace(0, n - 1, count).round().astype(int))
        count = indices.size
        columns = columns or int(np.ceil(np.sqrt(count)))
        rows = -(-count // columns)
        cell_w, cell_h = tile_size, tile_size + CAPTION_HEIGHT
        height, width = GUTTER + rows * (cell_h + GUTTER), GUTTER + columns * (cell_w + GUTTER)
        sheet = np.empty((height, width, 3), np.uint8)
        sheet[:] = SHEET_BACKGROUND
        for k, index in enumerate(indices):
            r, c = divmod(k, columns)
            y0, x0 = GUTTER + r * (cell_h + GUTTER), GUTTER + c * (cell_w + GUTTER)
            cell = np.empty((cell_h, cell_w, 3), np.uint8)  # drawn apart, so text never spills
            cell[:] = TILE_FRAME
            image = reader.read_field(int(index), field)
            if image.shape[2] == 1:
                image = np.repeat(image, 3, axis=2)
            elif image.shape[2] == 4:
                image = image[:, :, :3]
            inner = tile_size - 4
            scale = min(inner / image.shape[1], inner / image.shape[0])
            w, h = max(1, int(round(image.shape[1] * scale))), max(1, int(round(image.shape[0] * scale)))
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            small = cv2.resize(np.ascontiguousarray(image), (w, h), interpolation=interpolation)
            top, left = 2 + (inner - h) // 2, 2 + (inner - w) // 2
            cell[top:top + h, left:left + w] = small
            caption = f"#{index}"
            if label_field is not None:
                caption += f" {label_field}={reader.read_field(int(index), label_field)}"
            cv2.putText(cell, caption[:20], (3, tile_size + CAPTION_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX,
                        0.38, (235, 235, 235), 1, cv2.LINE_AA)
            sheet[y0:y0 + cell_h, x0:x0 + cell_w] = cell
        output = os.fspath(output)
        ok = cv2.imwrite(output, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)) if output.lower().endswith('.png') \
            else False
        if not ok:
            raise ValueError(f"cannot write the contact sheet to {output!r} "
                             "(give a writable path ending in .png)")
        return int(count)
    finally:
        reader.close()
