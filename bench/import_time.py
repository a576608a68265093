"""Import time of `edgecv` next to bare `numpy`, measured in the same run.

Each figure is the median of fresh interpreter processes (`python -X importtime`
is not used: it slows imports down). Prints the difference and the ratio
edgecv/numpy (import edgecv loads the standard library only; numpy comes with
the first public name used).

    .venv/bin/python bench/import_time.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CODE = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def measure(module: str, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", CODE.format(mod=module)], capture_output=True, text=True,
                             check=True)
        samples.append(float(out.stdout.strip().splitlines()[-1]) * 1e3)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    # interleave to spread drift evenly
    numpy_ms, edgecv_ms, tasks_ms = [], [], []
    for _ in range(args.repeats):
        numpy_ms.append(measure("numpy", 1))
        edgecv_ms.append(measure("edgecv", 1))
        tasks_ms.append(measure("edgecv; edgecv.Detector", 1))
    n, e, t = (statistics.median(x) for x in (numpy_ms, edgecv_ms, tasks_ms))
    print(f"{'import':<34} {'median ms':>10}")
    print(f"{'numpy':<34} {n:>10.1f}")
    print(f"{'edgecv':<34} {e:>10.1f}")
    print(f"{'edgecv; edgecv.Detector (+numpy)':<34} {t:>10.1f}")
    print(f"edgecv - numpy: {e - n:+.1f} ms (target: at most +30 ms)")
    print(f"edgecv with the tasks loaded - numpy: {t - n:+.1f} ms")


if __name__ == "__main__":
    main()
