"""Mutation campaign against the exam reader: prints outcome counts, per mutation, and peak memory.

    .venv/bin/python benchmarks/fuzz_campaign.py --iterations 5000 --seed 1 [--heavy] [--work DIR]

Outcomes: result, typed_error (a one-line MREFibrosisError), unhandled (a bug), stall (over
--stall-seconds), silent_change (ok, no flag beyond the clean exam's, > 5 % off it). The bounded
CI run is Testing/Python/test_fuzz_reader.py; mutations live in Testing/Python/fuzz_harness.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing" / "Python"))

import logging  # noqa: E402

from fuzz_harness import peak_memory_mb, prepare_base_exams, run_campaign  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--heavy", action="store_true", help="include large sparse files (header + zeros to 50-200 MB)")
    ap.add_argument("--stall-seconds", type=float, default=20.0)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--show", type=int, default=10, help="examples to print per failing kind")
    ap.add_argument("--fixtures-only", action="store_true", help="only the small fixture exams (default: also a realistic simulated GE and Siemens exam)")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        tmp = Path(tmp)
        bases = prepare_base_exams(tmp / "bases", realistic=not args.fixtures_only)
        t0 = time.monotonic()

        def progress(i, report):
            if i % max(1, args.iterations // 20) == 0:
                print(f"  {i}/{args.iterations} {dict(report.counts)}", flush=True)

        report = run_campaign(bases, tmp / "work", args.iterations, args.seed, args.heavy, progress, args.stall_seconds)
        elapsed = time.monotonic() - t0
    print(f"\n{report.iterations} iterations in {elapsed:.0f} s (seed {args.seed}{', heavy' if args.heavy else ''})")
    for kind in ("result", "typed_error", "unhandled", "stall", "silent_change"):
        print(f"  {kind:14s} {report.counts.get(kind, 0)}")
    print(f"  silent changes of meaning-changing mutations: {len(report.silent_meaning)}")
    print(f"  slowest iteration {report.slowest_seconds:.1f} s (stall limit {args.stall_seconds:g} s); peak memory {peak_memory_mb():.0f} MB")
    print(f"  base exams: {', '.join(b.name for b in bases)}")
    print("\nper mutation:")
    for name in sorted(report.by_mutation):
        print(f"  {name:22s} {dict(sorted(report.by_mutation[name].items()))}")
    for title, items in (("unhandled", report.unhandled), ("stalls", report.stalls), ("silent changes", report.silent)):
        if items:
            print(f"\n{title} (first {args.show}):")
            for o in items[: args.show]:
                print(f"  {o.detail}")
    bad = report.counts.get("unhandled", 0) + report.counts.get("stall", 0) + len(report.silent_meaning)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
