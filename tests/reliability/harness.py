"""Run model files through worker subprocesses, attribute crashes and hangs to single files, count outcomes.

Files are split into shards, one worker process per shard at a time (shards
run in parallel). A worker reports every file before and after touching it
(see ``worker.py``); when it dies from a signal, exits early or stalls, the
file it was on is recorded as the culprit and a fresh worker carries on with
the rest of the shard.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .mutations import KINDS, Mutant

__all__ = ["Outcome", "run_mutants", "summarize", "format_table", "RESULTS", "ACCEPTABLE"]

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")

#: Outcome names, in report order. "ok", "edgecv" and "long_run" are acceptable: "long_run" is a model
#: with a loop op still computing after ``loop_timeout_s`` (a mutated trip count or bound; loops are legal and
#: their length can depend on the input, so no loader can refuse them). "hang" is any other stall.
RESULTS = ("ok", "edgecv", "long_run", "other", "signal", "exit", "hang")
ACCEPTABLE = ("ok", "edgecv", "long_run")


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    result: str      # one of RESULTS
    detail: str      # error class and message, signal name, or the worker's last stderr lines


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def complete_records(data: bytes) -> list[str]:
    """The newline-terminated records of *data*, decoded; a last line the worker is still writing is left out.

    The harness polls the results file while the worker appends to it, so the final line may be cut
    anywhere (even inside a UTF-8 sequence); only text up to the last newline is a finished record.
    """
    end = data.rfind(b"\n")
    if end < 0:
        return []
    return data[:end].decode("utf-8", errors="replace").split("\n")


def _read_results(path: Path) -> tuple[dict[int, tuple[str, str]], int | None, bool]:
    """``(finished outcomes by index, index in flight or None, whether it is invoking a loop model)``."""
    done: dict[int, tuple[str, str]] = {}
    started: int | None = None
    looping = False
    if not path.exists():
        return done, None, False
    for line in complete_records(path.read_bytes()):
        if line.startswith("B "):
            started, looping = int(line[2:]), False
        elif line.startswith("I "):
            looping = line.split()[2] == "1"
        elif line.startswith("R "):
            index, payload = line[2:].split(" ", 1)
            done[int(index)] = tuple(json.loads(payload))  # type: ignore[assignment]
    in_flight = started if started is not None and started not in done else None
    return done, in_flight, looping and in_flight is not None


def _run_shard(mutants: list[Mutant], python: str, stall_timeout_s: float, loop_timeout_s: float, workdir: Path,
               env: dict[str, str], out: list[Outcome]) -> None:
    remaining = list(mutants)
    restarts = 0
    while remaining:
        listing = workdir / f"list{restarts}.txt"
        results = workdir / f"results{restarts}.txt"
        log = workdir / f"stderr{restarts}.txt"
        listing.write_text("".join(json.dumps(m.to_json()) + "\n" for m in remaining), encoding="utf-8")
        with open(log, "wb") as err:
            proc = subprocess.Popen([python, str(WORKER), str(listing), str(results)], cwd=str(REPO),
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
            last_size, last_change, stalled, looping = -1, time.monotonic(), False, False
            while proc.poll() is None:
                time.sleep(0.05)
                size = results.stat().st_size if results.exists() else 0
                if size != last_size:
                    last_size, last_change = size, time.monotonic()
                    looping = _read_results(results)[2]
                elif time.monotonic() - last_change > (loop_timeout_s if looping else stall_timeout_s):
                    proc.kill()
                    proc.wait()
                    stalled = True
        done, in_flight, looping = _read_results(results)
        for i in sorted(done):
            result, detail = done[i]
            out.append(Outcome(remaining[i], result, detail))
        if in_flight is None:
            if proc.returncode != 0 and len(done) < len(remaining):
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"fuzz worker failed before its first file (exit {proc.returncode}): {tail}")
            if proc.returncode != 0:  # died after its last file: a teardown crash, charged to that file
                result = "signal" if proc.returncode < 0 else "exit"
                out.append(Outcome(remaining[-1], result, f"at exit: {_signal_name(proc.returncode)}"))
            return
        tail = log.read_text(errors="replace")[-2000:]
        if stalled and looping:
            out.append(Outcome(remaining[in_flight], "long_run", f"loop still running after {loop_timeout_s:.0f} s"))
        elif stalled:
            out.append(Outcome(remaining[in_flight], "hang", f"no progress for {stall_timeout_s:.0f} s\n{tail}"))
        elif proc.returncode < 0:
            out.append(Outcome(remaining[in_flight], "signal", f"{_signal_name(proc.returncode)}\n{tail}"))
        else:
            out.append(Outcome(remaining[in_flight], "exit", f"exit status {proc.returncode}\n{tail}"))
        remaining = remaining[in_flight + 1:]
        restarts += 1


def run_mutants(mutants: list[Mutant], *, python: str | None = None, workers: int = 2,
                stall_timeout_s: float = 60.0, loop_timeout_s: float = 5.0) -> list[Outcome]:
    """Load and invoke every mutant in worker subprocesses; return one outcome per mutant.

    Args:
        mutants: files to check.
        python: interpreter for the workers (default: this one); it must be able to import edgecv.
        workers: shards run in parallel.
        stall_timeout_s: a worker silent this long on one file is killed and the file recorded as a hang.
        loop_timeout_s: the same for a model with a loop op that is being invoked ("long_run").
    """
    python = python or sys.executable
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONFAULTHANDLER"] = "1"
    shards = [mutants[i::workers] for i in range(workers)]
    outs: list[list[Outcome]] = [[] for _ in shards]
    errors: list[BaseException] = []
    with tempfile.TemporaryDirectory(prefix="edgecv-fuzz-") as tmp:
        def run(i: int) -> None:
            try:
                folder = Path(tmp) / f"shard{i}"
                folder.mkdir()
                _run_shard(shards[i], python, stall_timeout_s, loop_timeout_s, folder, env, outs[i])
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(shards))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    order = {id(m): k for k, m in enumerate(mutants)}
    return sorted((o for shard in outs for o in shard), key=lambda o: order[id(o.mutant)])


def summarize(outcomes: list[Outcome]) -> dict[str, dict[str, Counter]]:
    """Counts by format, then mutation kind, then result."""
    table: dict[str, dict[str, Counter]] = {}
    for o in outcomes:
        table.setdefault(o.mutant.format, {}).setdefault(o.mutant.kind, Counter())[o.result] += 1
    return table


def format_table(outcomes: list[Outcome]) -> str:
    """A plain-text table: files per format and mutation kind, and how each ended."""
    table = summarize(outcomes)
    header = f"{'format':<7} {'mutation':<17} {'files':>6} " + " ".join(f"{r:>7}" for r in RESULTS)
    lines = [header, "-" * len(header)]
    for fmt in sorted(table):
        total: Counter = Counter()
        for kind in KINDS:
            counts = table[fmt].get(kind)
            if not counts:
                continue
            total.update(counts)
            lines.append(f"{fmt:<7} {kind:<17} {sum(counts.values()):>6} "
                         + " ".join(f"{counts.get(r, 0):>7}" for r in RESULTS))
        lines.append(f"{fmt:<7} {'all':<17} {sum(total.values()):>6} "
                     + " ".join(f"{total.get(r, 0):>7}" for r in RESULTS))
    return "\n".join(lines)
