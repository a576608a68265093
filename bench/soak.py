"""Soak: run each task for N frames and print resident memory at start, after warm-up and at the end.

Tasks: uint8 MobileNetV2 classifier, SSD MobileNet detector (in-model
post-processing), float DeepLabV3 257 segmenter (the fixtures), and a tiny
in-process ONNX embedder (the fixtures hold no embedding model; see
tests/reliability/soak.py). Frames cycle through four photos of different
sizes. Pass: RSS growth after warm-up below --limit-mib (2 MiB) for every
task; exit status 1 otherwise.

    .venv/bin/python bench/soak.py [--frames 20000] [--tasks classify,detect]
    .venv-device/bin/python bench/soak.py --frames 2000       # the lean device env
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import fixtures_dir  # noqa: E402
from tests.reliability.soak import MIB, default_tasks, soak, soak_frames  # noqa: E402


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MIB:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20_000, help="frames per task after warm-up")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--tasks", default="classify,detect,segment,embed")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: the runtime's)")
    parser.add_argument("--limit-mib", type=float, default=2.0)
    args = parser.parse_args()

    fixtures = fixtures_dir()
    if fixtures is None:
        print("fixtures folder absent: set EDGECV_FIXTURES", file=sys.stderr)
        return 2
    frames = soak_frames(fixtures)
    wanted = [t.strip() for t in args.tasks.split(",") if t.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="edgecv-soak-") as tmp:
        tasks = default_tasks(fixtures, Path(tmp), num_threads=args.threads)
        unknown = [t for t in wanted if t not in tasks]
        if unknown:
            print(f"unknown task(s) {unknown}; choose from {list(tasks)}", file=sys.stderr)
            return 2
        for name in wanted:
            model, factory = tasks[name]
            print(f"{name}: {model}, {args.warmup} warm-up + {args.frames} frames ...", file=sys.stderr, flush=True)
            results.append(soak(name, model, factory, frames, count=args.frames, warmup=args.warmup,
                                progress=lambda n: print(f"  {n} frames", file=sys.stderr, flush=True)))
    print(f"{'task':<9} {'model':<52} {'frames':>7} {'RSS start':>10} {'after warm-up':>14} {'end':>9} "
          f"{'growth':>8} {'ms/frame':>9}")
    print(f"{'':<9} {'':<52} {'':>7} {'MiB':>10} {'MiB':>14} {'MiB':>9} {'MiB':>8}")
    failed = False
    for r in results:
        growth = r.growth_bytes
        bad = growth is not None and growth >= args.limit_mib * MIB
        failed |= bad
        print(f"{r.task:<9} {r.model[:52]:<52} {r.frames:>7} {_mib(r.rss_start_bytes):>10} "
              f"{_mib(r.rss_warm_bytes):>14} {_mib(r.rss_end_bytes):>9} {_mib(growth):>8} "
              f"{1000 * r.seconds / max(r.frames, 1):>9.2f}{'  OVER LIMIT' if bad else ''}")
    print(f"limit: growth after warm-up < {args.limit_mib} MiB per task -> {'FAIL' if failed else 'pass'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
