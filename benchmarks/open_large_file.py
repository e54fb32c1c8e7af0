"""Time opening a .beton file of 10 million samples.

    python benchmarks/open_large_file.py [--samples 10000000] [--bytes] [--dir DIR]

Writes the file once (kept in DIR for later runs), then, in a fresh process each time,
times `Reader(path)` and the first `reader[i]` reads, after asking the kernel to drop
the file from its page cache (cold) and with it cached (warm). With --bytes every sample
also has a small BytesField value, so the file has one allocation-table entry per sample
(10 million entries, 240 MB) that opening must not read.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

PROBE = r'''
import os, sys, time
path, cold = sys.argv[1], sys.argv[2] == 'cold'
if cold:
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
t0 = time.perf_counter()
from ffcv_format import Reader
t1 = time.perf_counter()
reader = Reader(path)
t2 = time.perf_counter()
values = [reader[i] for i in (0, reader.num_samples // 2, reader.num_samples - 1)]
t3 = time.perf_counter()
print(f"{t1 - t0:.4f} {t2 - t1:.4f} {t3 - t2:.4f} {reader.num_samples} {len(reader.alloc_table)}")
'''


class Samples:
    def __init__(self, n, with_bytes):
        self.n, self.with_bytes = n, with_bytes

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return (i, b'x') if self.with_bytes else (i,)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--samples', type=int, default=10_000_000)
    parser.add_argument('--bytes', action='store_true', help='add a BytesField (one allocation per sample)')
    parser.add_argument('--dir', default=tempfile.gettempdir())
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()

    from ffcv_format import BytesField, DatasetWriter, IntField
    name = f"open-bench-{args.samples}{'-bytes' if args.bytes else ''}.beton"
    path = os.path.join(args.dir, name)
    if not os.path.exists(path):
        fields = {'label': IntField()}
        if args.bytes:
            fields['blob'] = BytesField()
        t0 = time.perf_counter()
        DatasetWriter(path, fields).from_indexed_dataset(Samples(args.samples, args.bytes), chunksize=10_000)
        print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    print(f"file: {path}, {os.path.getsize(path) / 1e6:.0f} MB")
    for mode in ('cold', 'warm'):
        opens, reads = [], []
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, '-c', PROBE, path, mode], check=True,
                                 capture_output=True, text=True).stdout.split()
            opens.append(float(out[1]))
            reads.append(float(out[2]))
        opens.sort()
        reads.sort()
        print(f"{mode}: Reader(path) median {opens[len(opens) // 2] * 1000:.1f} ms "
              f"(min {opens[0] * 1000:.1f}, max {opens[-1] * 1000:.1f}); 3 samples read in "
              f"{reads[len(reads) // 2] * 1000:.1f} ms; {out[3]} samples, {out[4]} allocations")


if __name__ == '__main__':
    main()
