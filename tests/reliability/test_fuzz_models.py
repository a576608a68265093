"""Mutated model files (every fixture and tiny in-process model) either work or raise an EdgeCVError.

About 870 mutated .tflite and 940 mutated .onnx files (truncated, header /
structure / body byte flips, zero length, random bytes, wrong suffix, and
well-formed but wrong: retyped inputs/outputs, reordered or duplicated output
lists, NaN/inf in custom options, a few bytes cut off) are
loaded and invoked in worker subprocesses that report each file as they go,
so a crash is pinned to one file and the rest still run. No other exception
type may escape edgecv.load / Model.invoke, and no worker may die from a
signal, exit or stall. The corpus is seeded: the same files every run.
bench/fuzz_models.py runs the same harness on larger corpora and prints the
counts.
"""

from __future__ import annotations

import sys

import pytest

from .corpus import build_corpus
from .harness import ACCEPTABLE, format_table, run_mutants, summarize
from .mutations import KINDS

pytestmark = [pytest.mark.device, pytest.mark.slow]


def test_mutated_models_load_and_run_or_raise_edgecv_errors(fixtures, tmp_path):
    mutants = build_corpus(tmp_path, fixtures, scale=3)
    outcomes = run_mutants(mutants, python=sys.executable, workers=2)
    table = format_table(outcomes)
    print(table)
    assert len(outcomes) == len(mutants)
    counts = summarize(outcomes)
    for fmt in ("tflite", "onnx"):
        assert sum(sum(c.values()) for c in counts[fmt].values()) >= 300, table
        kinds = set(KINDS) - ({"options_nonfinite"} if fmt == "onnx" else set())  # ONNX has no custom options
        assert set(counts[fmt]) == kinds, table
        # the corpus is not all trivially rejected: some mutants still load and run to the end
        assert sum(c["ok"] for c in counts[fmt].values()) > 0, table
    bad = [o for o in outcomes if o.result not in ACCEPTABLE]
    details = "\n\n".join(f"{o.result}: {o.mutant.path.name}\n{o.detail[-1200:]}" for o in bad[:5])
    assert not bad, f"{len(bad)} file(s) ended outside EdgeCVError:\n{table}\n\n{details}"
    # loops whose mutated trip count runs "forever" are tolerated, but each costs the loop timeout
    assert sum(o.result == "long_run" for o in outcomes) <= 3, table
