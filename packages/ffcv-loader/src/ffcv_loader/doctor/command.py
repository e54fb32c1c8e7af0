"""``ffcv doctor``'s run: diagnose the file as the arguments say, print the report."""
import sys

from .diagnosis import diagnose


def run_doctor(args):
    def progress(line):
        if not args.quiet:
            print(f"ffcv doctor: {line}...", file=sys.stderr, flush=True)

    if args.process_cache_limit is not None and args.os_cache:
        raise ValueError("--process-cache-limit applies to the process cache: add --no-os-cache")
    report = diagnose(args.file, args.pipeline, workers=args.workers, batch_size=args.batch_size,
                      batches=args.batches, order=args.order, os_cache=args.os_cache,
                      process_cache_limit=args.process_cache_limit, model=args.model, inference=args.inference,
                      device=args.device, evict=not args.no_evict, progress=progress)
    print(report.to_json() if args.json else report.render())
    return 0
