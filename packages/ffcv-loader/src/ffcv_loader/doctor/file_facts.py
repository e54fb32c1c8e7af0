"""Facts about a .beton file that the doctor needs: sizes, pages, where a sample of rows keeps
its data, the image fields' stored sizes and a few of their JPEGs; and about this machine
(memory available, cores)."""
import os
from dataclasses import dataclass

import numpy as np

@dataclass
class FileFacts:
    """What :func:`read_file_facts` found (no file is open: plain data)."""
    path: str
    file_size: int
    num_samples: int
    page_size: int
    data_start: int
    data_end: int
    fields: dict              # name -> field class name
    handlers: dict
    extents: list             # per sampled sample: list of (ptr, size)
    images: dict              # image field -> stats
    jpeg_samples: dict        # image field -> list of bytes (a few stored JPEGs)


def read_file_facts(path, sample_limit=4096, jpeg_limit=24, seed=0):
    from ffcv_format import ImageField, Reader
    reader = Reader(path)
    try:
        n = reader.num_samples
        if n == 0:
            raise ValueError(f"{path!r} has no samples: nothing to load")
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(n, size=min(n, sample_limit), replace=False))
        meta = reader.metadata[picked]                     # a copy of the picked rows
        columns = []
        for name in reader.field_names:
            columns += [(ptrs, sizes) for _, ptrs, sizes in reader.extents(name, picked)]
        extents = [[(int(p[k]), int(s[k])) for p, s in columns if s[k] > 0] for k in range(picked.size)]
        images, jpegs = {}, {}
        for name in reader.field_names:
            handler = reader.handlers[name]
            if not isinstance(handler, ImageField):
                continue
            column = meta[name]
            modes = np.asarray(column['mode'])
            heights = np.asarray(column['height'], dtype=np.int64)
            widths = np.asarray(column['width'], dtype=np.int64)
            images[name] = {'sampled': int(picked.size),
                            'jpeg_share': float((modes == 0).mean()), 'raw_share': float((modes == 1).mean()),
                            'png_share': float((modes == 2).mean()),
                            'median_height': float(np.median(heights)), 'median_width': float(np.median(widths)),
                            'mean_pixels': float((heights * widths).mean()),
                            'heights': heights, 'widths': widths,
                            'channels': int(getattr(handler, 'channels', 3))}
            jpeg_rows = np.flatnonzero(modes == 0)[:jpeg_limit]
            jpegs[name] = [bytes(reader.stored_bytes(int(picked[k]), name)) for k in jpeg_rows]
        data_start = reader.data_region[0]
        facts = FileFacts(path=os.fspath(path), file_size=reader.file_size, num_samples=n,
                           page_size=reader.page_size, data_start=data_start, data_end=reader.alloc_table_ptr,
                           fields={k: type(h).__name__ for k, h in reader.handlers.items()},
                           handlers=dict(reader.handlers), extents=extents, images=images, jpeg_samples=jpegs)
        del meta
        return facts
    finally:
        reader.close()


def num_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
