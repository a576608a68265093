"""A short soak: every task runs hundreds of frames and resident memory grows less than 2 MiB after warm-up.

This is a memory bound, not a timing bound. bench/soak.py runs the same
tasks for 20,000 frames each and prints the figures. In the lean device
environment (tflite-runtime 2.14, whose uint8 kernels are ~15x slower) the
two uint8 models run fewer frames to keep the test near a minute.
"""

from __future__ import annotations

import pytest

from tests.conftest import LEAN
from tests.reliability.soak import MIB, default_tasks, soak, soak_frames

pytestmark = [pytest.mark.device, pytest.mark.slow]

FRAMES = {"classify": 150 if LEAN else 500, "detect": 150 if LEAN else 500, "segment": 500, "embed": 500}
LIMIT_BYTES = 2 * MIB


def test_memory_stays_flat_after_warm_up(fixtures, tmp_path):
    frames = soak_frames(fixtures)
    tasks = default_tasks(fixtures, tmp_path)
    results = [soak(name, model, factory, frames, count=FRAMES[name], warmup=100)
               for name, (model, factory) in tasks.items()]
    report = "\n".join(f"{r.task}: start {r.rss_start_bytes}, warm {r.rss_warm_bytes}, end {r.rss_end_bytes}, "
                       f"growth {r.growth_bytes} bytes over {r.frames} frames" for r in results)
    print(report)
    assert [r.task for r in results] == ["classify", "detect", "segment", "embed"]
    for r in results:
        assert r.growth_bytes is not None, "this platform reports no current RSS (/proc/self/status)"
        assert r.growth_bytes < LIMIT_BYTES, report
