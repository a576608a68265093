"""Fuzz edgecv.load + invoke with mutated model files and print how every file ended.

Builds the seeded corpus of tests/reliability (every fixture model and every
tiny in-process model; truncation, header/structure/body byte flips, zero
length, random bytes, wrong suffix, and well-formed but wrong files: retyped
inputs/outputs, reordered or duplicated output lists, NaN/inf in custom
options, a few bytes cut off), runs it through crash-attributing worker
subprocesses and prints files per mutation kind with the counts of: ok (loaded
and ran), edgecv (an EdgeCVError), long_run (a loop model still computing at
the loop timeout), other (any other exception), signal (the process died),
exit, hang. Files that ended in other/signal/exit/hang are listed with the
cause. Exit status 1 if there are any.

    .venv/bin/python bench/fuzz_models.py [--scale 3] [--seed N]        # scale 4: about 2,400 files
    .venv/bin/python bench/fuzz_models.py --python .venv-device/bin/python   # the lean device env's runtimes
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import fixtures_dir  # noqa: E402
from tests.reliability.corpus import DEFAULT_SEED, build_corpus  # noqa: E402
from tests.reliability.harness import ACCEPTABLE, format_table, run_mutants  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=3, help="multiplies the per-model mutant counts of the test (1)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--python", default=sys.executable, help="interpreter the workers run in")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--messages", type=int, default=12, help="most common EdgeCVError messages to show")
    args = parser.parse_args()

    fixtures = fixtures_dir()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgecv-fuzz-corpus-") as tmp:
        mutants = build_corpus(Path(tmp), fixtures, seed=args.seed, scale=args.scale)
        outcomes = run_mutants(mutants, python=args.python, workers=args.workers)
    elapsed = time.perf_counter() - start
    version = _runtime_versions(args.python)
    print(f"seed {args.seed}, scale {args.scale}, fixtures {'yes' if fixtures else 'absent'}, workers "
          f"{args.workers}, {len(outcomes)} files in {elapsed:.0f} s; runtimes: {version}")
    print(format_table(outcomes))
    messages = collections.Counter()
    for o in outcomes:
        if o.result == "edgecv":
            first = o.detail.splitlines()[0]
            messages[re.sub(r"\d+", "N", re.sub(r"(/[\w.\-]+)+", "<path>", first))[:140]] += 1
    if args.messages:
        print("\nmost common EdgeCVError messages (numbers as N):")
        for text, count in messages.most_common(args.messages):
            print(f"{count:>6}  {text}")
    bad = [o for o in outcomes if o.result not in ACCEPTABLE]
    for o in bad:
        print(f"\n{o.result}: {o.mutant.path.name} ({o.mutant.kind} of {o.mutant.source})\n{o.detail[-1500:]}")
    return 1 if bad else 0


def _runtime_versions(python: str) -> str:
    import subprocess

    code = ("from importlib import metadata as m\n"
            "for d in ('ai-edge-litert', 'tflite-runtime', 'onnxruntime', 'numpy'):\n"
            "    try: print(d, m.version(d))\n"
            "    except m.PackageNotFoundError: pass\n")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return ", ".join(out.stdout.split("\n")[:-1]) or "unknown"


if __name__ == "__main__":
    sys.exit(main())
