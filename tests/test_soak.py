"""A short soak: every task runs hundreds of frames and resident memory grows less than 2 MiB after warm-up.

This is a memory bound, not a timing bound. bench/soak.py runs the same
tasks for 20,000 frames each and prints the figures. In the lean device
environment (tflite-runtime 2.14, whose uint8 kernels are ~15x slower) the
two uint8 models run fewer frames to keep the test near a minute. Emulated
(tools/arm64, QEMU, 40-70x slower) every task runs 40 frames after 20 of
warm-up, or the test would take hours there: a leak of 50 KB per frame still
shows.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import EMULATED, LEAN, REPO
from tests.reliability.soak import MIB

pytestmark = [pytest.mark.device, pytest.mark.slow]

FRAMES = {"classify": 150 if LEAN else 500, "detect": 150 if LEAN else 500, "segment": 500, "embed": 500}
WARMUP = 100
TIMEOUT_S = 600
if EMULATED:
    FRAMES, WARMUP, TIMEOUT_S = dict.fromkeys(FRAMES, 40), 20, 3600
LIMIT_BYTES = 2 * MIB


# Run in a fresh process: inside the test session, RSS also moves with whatever earlier tests left behind
# (TensorFlow's threads and arenas), which is not the runtime's doing.
_DRIVER = """
import json, sys
from pathlib import Path
from tests.reliability.soak import default_tasks, soak, soak_frames
fixtures, workdir, counts, warmup = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
frames = soak_frames(fixtures)
results = [soak(name, model, factory, frames, count=counts[name], warmup=warmup)
           for name, (model, factory) in default_tasks(fixtures, workdir).items()]
print(json.dumps([[r.task, r.rss_start_bytes, r.rss_warm_bytes, r.rss_end_bytes, r.frames, r.growth_bytes]
                  for r in results]))
"""


def test_memory_stays_flat_after_warm_up(fixtures, tmp_path):
    done = subprocess.run([sys.executable, "-c", _DRIVER, str(fixtures), str(tmp_path), json.dumps(FRAMES),
                           str(WARMUP)], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    report = "\n".join(f"{task}: start {start}, warm {warm}, end {end}, growth {growth} bytes over {n} frames"
                       for task, start, warm, end, n, growth in results)
    print(report)
    assert [r[0] for r in results] == ["classify", "detect", "segment", "embed"]
    for *_, growth in results:
        assert growth is not None, "this platform reports no current RSS (/proc/self/status)"
        assert growth < LIMIT_BYTES, report
