"""``bench`` and ``compare``: load, warm up, time, summarise.

Timing: every call is timed on its own with ``time.perf_counter_ns`` around
``Model.invoke()`` (a model benchmark) or the whole task call (a task
benchmark, whose result's ``timing`` gives the preprocess / inference /
postprocess split). Nothing else runs inside the timed region: inputs are
prepared before, progress is drawn and samples are stored after.

Phases: load (timed), first call (cold, reported alone), ``warmup`` calls
(reported as a mean), then the measured calls: ``runs`` of them, or as many
as fit in ``duration_s`` seconds, whichever ends first. ``compare`` runs the
artifacts round-robin, one call of each per round, in every phase, so drift
(thermal throttling, other load on the machine) hits all of them equally.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Callable, Union, overload

import numpy as np

from .._version import __version__
from ..checks import check_int, check_number, is_int
from ..errors import ConfigError
from ..manifest import normalize_task
from ..model import Model, load
from ..task_registry import TASKS
from .bench_report import SCHEMA_VERSION, BenchReport, Fingerprint, ModelFacts
from .host import HostInfo, read_host, read_temperature_c, target_mismatches
from .inputs import RANDOM_SEED, ImageInputs, InputsArg, load_images, random_inputs
from .memory import memory_stats, read_rss
from .progress import Progress
from .stats import StageSplit, latency_stats, stage_stats

__all__ = ["bench", "compare", "DEFAULT_RUNS", "DEFAULT_WARMUP"]

log = logging.getLogger("edgecv")

DEFAULT_RUNS = 100
DEFAULT_WARMUP = 5
HOT_CELSIUS = 80.0
_STEADY_GOVERNORS = ("performance",)
TASK_METHODS = {t.name: t.verb for t in TASKS}
Subject = Union[str, "os.PathLike[str]", Model, Any]


# -- argument checks -------------------------------------------------------------

def _check_count(value: Any, name: str, minimum: int) -> int | None:
    if value is None:
        return None
    return check_int(value, name, minimum=minimum)


def _check_duration(value: Any) -> float | None:
    if value is None:
        return None
    return check_number(value, "duration_s", above=0, expected="a positive number of seconds")


def _thread_settings(threads: Any) -> tuple[list[int | None], bool]:
    """``(settings, is_sweep)`` from ``threads``: None, an int, or a sequence of ints."""
    if threads is None:
        return [None], False
    if is_int(threads):
        return [_check_count(threads, "threads", 1)], False
    if isinstance(threads, Sequence) and not isinstance(threads, (str, bytes)):
        if len(threads) == 0:
            raise ConfigError("threads is an empty list; give e.g. threads=[1, 2, 4] or None for the default")
        values = [_check_count(t, "each threads value", 1) for t in threads]
        if len(set(values)) != len(values):
            raise ConfigError(f"threads lists a value twice: {list(threads)}")
        return values, True
    raise ConfigError(f"threads must be an int, a list of ints or None, got {threads!r}")


def _resolve_target(target: Any) -> Any:
    if target is None or not isinstance(target, str):
        return target
    import targets as _targets

    return _targets.get(target)


def _is_task(obj: Any) -> bool:
    return getattr(obj, "task_name", None) in TASK_METHODS and isinstance(getattr(obj, "model", None), Model)


def _build_task(task: str, model: Model) -> Any:
    """Wrap *model* in the task class (from the task registry) for a task name.

    Raises:
        ConfigError: unknown task (and everything the task constructor raises).
    """
    from ..tasks import task_class

    return task_class(task)(model)


# -- one artifact under measurement ----------------------------------------------------

class _Samples:
    """A growable array of numbers (preallocated; doubles when full)."""

    def __init__(self, capacity: int, dtype: Any) -> None:
        self._data = np.empty(max(16, capacity), dtype)
        self.count = 0

    def add(self, value: float) -> None:
        if self.count == self._data.size:
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[self.count] = value
        self.count += 1

    @property
    def values(self) -> np.ndarray:
        return self._data[: self.count]


class _Subject:
    """One loaded artifact (bare model or task) with its inputs prepared and its samples."""

    def __init__(self, label: str, model: Model, task_obj: Any, *, threads: int | None, load_ms: float | None,
                 owned: Any, target: Any) -> None:
        self.label = label
        self.model = model
        self.task = task_obj
        self.threads = threads
        self.load_ms = load_ms
        self.owned = owned  # what to close afterwards (a task or model we created), else None
        self.target = target
        self.input_source = "random"
        self._images: list[np.ndarray] = []
        self._feeds: list[np.ndarray] = []
        self._method: Callable[[Any], Any] | None = (getattr(task_obj, TASK_METHODS[task_obj.task_name])
                                                     if task_obj is not None else None)
        self._next = 0
        self._last_timing: Any = None
        self.first_ms = 0.0
        self.warmup_ns: list[int] = []
        self.latency_ns = _Samples(0, np.int64)
        self.split_ms: tuple[_Samples, _Samples, _Samples] | None = None

    def prepare(self, images: ImageInputs | None, expected_runs: int) -> None:
        """Write random data or images into the inputs (model), or pick the images (task)."""
        self.latency_ns = _Samples(expected_runs, np.int64)
        if self.task is not None:
            self.split_ms = (_Samples(expected_runs, np.float64), _Samples(expected_runs, np.float64),
                             _Samples(expected_runs, np.float64))
            if images is not None:
                self._images, self.input_source = images.images, images.description
            else:
                pre = self.task.preprocessor
                rng = np.random.default_rng(RANDOM_SEED)
                self._images = [rng.integers(0, 256, size=(pre.height, pre.width, 3), dtype=np.uint8)]
                self.input_source = f"random image {pre.width}x{pre.height}"
            return
        buffers = [self.model.input_buffer(i) for i in range(len(self.model.inputs))]
        for buf, arr in zip(buffers, random_inputs(self.model.inputs)):
            np.copyto(buf, arr)
        if images is None:
            return
        if len(self.model.inputs) > 1:
            log.info("%s has %d inputs: images feed input 0, the others get random data",
                     self.label, len(self.model.inputs))
        for image in images.images:
            self.model.preprocess(image)
            self._feeds.append(buffers[0].copy())
        if len(self._feeds) == 1:
            self._feeds = []  # the one image stays in the input buffer
        self.input_source = images.description

    def call(self) -> int:
        """One timed call; returns its duration in nanoseconds."""
        i = self._next
        self._next += 1
        if self._method is not None:
            image = self._images[i % len(self._images)]
            start = time.perf_counter_ns()
            result = self._method(image)
            elapsed = time.perf_counter_ns() - start
            self._last_timing = getattr(result, "timing", None)
            return elapsed
        if self._feeds:
            np.copyto(self.model.input_buffer(0), self._feeds[i % len(self._feeds)])
        start = time.perf_counter_ns()
        self.model.invoke()
        return time.perf_counter_ns() - start

    def record(self, elapsed_ns: int) -> None:
        self.latency_ns.add(elapsed_ns)
        if self.split_ms is not None:
            timing = self._last_timing
            if timing is None:
                self.split_ms = None
                return
            self.split_ms[0].add(timing.preprocess_ms)
            self.split_ms[1].add(timing.inference_ms)
            self.split_ms[2].add(timing.postprocess_ms)

    def close(self) -> None:
        if self.owned is not None:
            self.owned.close()


def _open_subject(item: Subject, *, task: str | None, target: Any, threads: int | None) -> _Subject:
    """Load a path (timed), or take a Model / task object as it is."""
    if _is_task(item):
        if task is not None and normalize_task(task) != item.task_name:
            raise ConfigError(f"task={task!r} given with a {type(item).__name__} object; leave task out")
        _no_load_options(item, target, threads)
        return _Subject("", item.model, item, threads=None, load_ms=None, owned=None, target=item.model.target)
    if isinstance(item, Model):
        _no_load_options(item, target, threads)
        task_obj = _build_task(normalize_task(task), item) if task is not None else None
        return _Subject("", item, task_obj, threads=None, load_ms=None, owned=task_obj, target=item.target)
    if isinstance(item, (str, os.PathLike)):
        task_name = normalize_task(task) if task is not None else None
        start = time.perf_counter_ns()
        model = load(item, target=target, num_threads=threads)
        try:
            task_obj = _build_task(task_name, model) if task_name is not None else None
        except BaseException:
            model.close()
            raise
        load_ms = (time.perf_counter_ns() - start) / 1e6
        effective = threads if threads is not None else getattr(target, "default_threads", None)
        return _Subject("", model, task_obj, threads=effective, load_ms=load_ms, owned=_Owned(model, task_obj),
                        target=target)
    raise ConfigError(f"benchmark a model path, an edgecv.Model or a task object (Classifier, ...); "
                      f"got {type(item).__name__}")


class _Owned:
    def __init__(self, model: Model, task_obj: Any) -> None:
        self.model, self.task = model, task_obj

    def close(self) -> None:
        if self.task is not None:
            self.task.close()
        self.model.close()


def _no_load_options(item: Any, target: Any, threads: int | None) -> None:
    given = [n for n, v in (("target", target), ("threads", threads)) if v is not None]
    if given:
        raise ConfigError(f"{' and '.join(given)} cannot be applied to an already loaded {type(item).__name__}; "
                          "pass the model path instead (with task=... for a task benchmark)")


def _labels(subjects: list[_Subject]) -> None:
    names = [s.model.path.name for s in subjects]
    for s in subjects:
        name = s.model.path.name
        s.label = name if names.count(name) == 1 else str(s.model.path)
    seen: dict[str, int] = {}
    for s in subjects:
        seen[s.label] = seen.get(s.label, 0) + 1
        if seen[s.label] > 1:
            s.label = f"{s.label}#{seen[s.label]}"


# -- measuring ---------------------------------------------------------------------------

def _measure(subjects: list[_Subject], *, runs: int | None, warmup: int, duration_s: float | None,
             images: ImageInputs | None, progress: bool) -> list[BenchReport]:
    expected = runs if runs is not None else 1024
    for s in subjects:
        s.prepare(images, expected)
    host = read_host()
    shown = subjects[0].label if len(subjects) == 1 else f"{len(subjects)} artifacts"
    bar = Progress(shown, enabled=progress)
    try:
        for s in subjects:
            s.first_ms = s.call() / 1e6
        for w in range(warmup):
            for s in subjects:
                s.warmup_ns.append(s.call())
            bar.update("warm-up", w + 1, warmup)
        rss_start = read_rss()
        start = time.perf_counter()
        rounds = 0
        while runs is None or rounds < runs:
            elapsed = time.perf_counter() - start
            if duration_s is not None and rounds > 0 and elapsed >= duration_s:
                break
            for s in subjects:
                s.record(s.call())
            rounds += 1
            bar.update("runs", rounds, runs, elapsed_s=elapsed, duration_s=duration_s)
        wall_s = time.perf_counter() - start
        rss_end = read_rss()
    finally:
        bar.close()
    temperature_end = read_temperature_c()
    memory = memory_stats(rss_start, rss_end, shared=len(subjects) > 1)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    labels = [s.label for s in subjects]
    return [_report(s, host, memory, wall_s, tuple(x for x in labels if x != s.label), temperature_end, created)
            for s in subjects]


def _caveats(s: _Subject, host: HostInfo, runs: int, mismatches: list[str], temperature_end: float | None) -> list[str]:
    notes = list(s.model.warnings)
    if mismatches:
        notes.append(f"this host is not the target {getattr(s.target, 'name', s.target)}: " + "; ".join(mismatches))
    if host.cpu_governor is not None and host.cpu_governor not in _STEADY_GOVERNORS:
        notes.append(f"CPU governor is {host.cpu_governor!r}: clock scaling adds variance; "
                     "set 'performance' for steady figures")
    hottest = max((t for t in (host.temperature_c, temperature_end) if t is not None), default=None)
    if hottest is not None and hottest >= HOT_CELSIUS:
        notes.append(f"CPU reached {hottest:.0f} C: the figures may include thermal throttling")
    if runs < 100:
        notes.append(f"p99 from only {runs} runs lies close to the maximum; use at least 100 runs for tails")
    if s.task is not None and s.split_ms is None:
        notes.append("the task results carry no timing; no preprocess/inference/postprocess split")
    return notes


def _report(s: _Subject, host: HostInfo, memory: Any, wall_s: float, others: tuple[str, ...],
            temperature_end: float | None, created: str) -> BenchReport:
    model = s.model
    latencies_ms = s.latency_ns.values / 1e6
    stats = latency_stats(latencies_ms)
    target = s.target
    if target is not None:
        mismatches = target_mismatches(host, target, model_format=model.format, accelerators=model.accelerators)
        matches: bool | None = not mismatches
    else:
        mismatches, matches = [], None
    split = None
    if s.split_ms is not None:
        split = StageSplit(*(stage_stats(part.values) for part in s.split_ms))
    fingerprint = Fingerprint(host=host, runtime=model.runtime, accelerators=tuple(model.accelerators),
                              target=getattr(target, "name", None), host_matches_target=matches,
                              target_mismatches=tuple(mismatches))
    facts = ModelFacts(path=str(model.path), format=model.format, size_bytes=int(model.size_bytes),
                       sha256=model.sha256, precision=model.precision,
                       inputs=tuple(spec.to_dict() for spec in model.inputs),
                       outputs=tuple(spec.to_dict() for spec in model.outputs))
    warm = [ns / 1e6 for ns in s.warmup_ns]
    return BenchReport(
        schema_version=SCHEMA_VERSION, label=s.label, fingerprint=fingerprint, model=facts,
        task=s.task.task_name if s.task is not None else None, threads=s.threads, input_source=s.input_source,
        load_ms=s.load_ms, first_inference_ms=s.first_ms, warmup_runs=len(warm),
        warmup_mean_ms=float(np.mean(warm)) if warm else None, latency=stats,
        latencies_ms=tuple(float(v) for v in latencies_ms), split=split, memory=memory, wall_s=wall_s,
        interleaved_with=others, temperature_end_c=temperature_end, created_utc=created,
        edgecv_version=__version__,
        warnings=tuple(_caveats(s, host, stats.runs, mismatches, temperature_end)),
    )


def _run(items: list[Subject], *, target: Any, runs: Any, warmup: Any, duration_s: Any, threads: Any,
         inputs: InputsArg, task: str | None, progress: bool) -> tuple[list[BenchReport], bool]:
    runs_n = _check_count(runs, "runs", 1)
    warmup_n = _check_count(warmup, "warmup", 0)
    duration = _check_duration(duration_s)
    settings, sweep = _thread_settings(threads)
    if task is not None:
        normalize_task(task)
    if runs_n is None and duration is None:
        runs_n = DEFAULT_RUNS
    tgt = _resolve_target(target)
    images = load_images(inputs)
    reports: list[BenchReport] = []
    for setting in settings:
        subjects: list[_Subject] = []
        try:
            for item in items:
                subjects.append(_open_subject(item, task=task, target=tgt, threads=setting))
            _labels(subjects)
            reports.extend(_measure(subjects, runs=runs_n, warmup=warmup_n if warmup_n is not None else DEFAULT_WARMUP,
                                    duration_s=duration, images=images, progress=progress))
        finally:
            for s in subjects:
                s.close()
    return reports, sweep


@overload
def bench(model_or_task: Subject, *, target: Any = ..., runs: int | None = ..., warmup: int | None = ...,
          duration_s: float | None = ..., threads: int | None = ..., inputs: InputsArg = ...,
          task: str | None = ..., progress: bool = ...) -> BenchReport: ...


@overload
def bench(model_or_task: Subject, *, target: Any = ..., runs: int | None = ..., warmup: int | None = ...,
          duration_s: float | None = ..., threads: Sequence[int], inputs: InputsArg = ...,
          task: str | None = ..., progress: bool = ...) -> list[BenchReport]: ...


def bench(model_or_task: Subject, *, target: Any = None, runs: int | None = None, warmup: int | None = None,
          duration_s: float | None = None, threads: int | Sequence[int] | None = None, inputs: InputsArg = None,
          task: str | None = None, progress: bool = True) -> BenchReport | list[BenchReport]:
    """Benchmark one model or task on this machine.

    Args:
        model_or_task: a model path (loaded here, load time measured), an
            :class:`edgecv.Model`, or a task object (Classifier, Detector,
            Segmenter, Embedder: whole calls are timed and the
            preprocess / inference / postprocess split reported).
        target: target name or Target for loading a path; the report says
            whether this host is that target.
        runs: measured calls (default 100 when ``duration_s`` is not given).
        warmup: calls after the first one and before measuring (default 5).
        duration_s: measure for this many seconds instead (with ``runs`` too:
            whichever ends first).
        threads: interpreter threads; a list sweeps them and returns one
            report per setting.
        inputs: None for seeded random data of each input's dtype; an image
            file, a folder of images, an HxWx3 uint8 BGR array or a list of
            them (preprocessed with the model's preprocessor for a model,
            passed to the task for a task).
        task: "classify", "detect", "segment" or "embed": wrap the model in that
            task and time whole calls.
        progress: allow a progress line on stderr (shown only when it is a terminal).

    Returns:
        A :class:`BenchReport`, or a list of them when ``threads`` is a list.

    Raises:
        ConfigError: bad arguments, inputs, or load options given with an already loaded model.
        (and everything :func:`edgecv.load` and the task constructors raise)
    """
    reports, sweep = _run([model_or_task], target=target, runs=runs, warmup=warmup, duration_s=duration_s,
                          threads=threads, inputs=inputs, task=task, progress=progress)
    return reports if sweep else reports[0]


def compare(models: Sequence[Subject], *, target: Any = None, runs: int | None = None, warmup: int | None = None,
            duration_s: float | None = None, threads: int | Sequence[int] | None = None,
            inputs: InputsArg = None, task: str | None = None, progress: bool = True) -> list[BenchReport]:
    """Benchmark several artifacts side by side, interleaved.

    All artifacts are loaded first; then every phase runs round-robin, one
    call of each artifact per round, so slow drift of the machine hits all
    of them equally, and every artifact gets the same number of calls and
    the same inputs. Arguments are those of :func:`bench`.

    Returns:
        One report per artifact, in the order given (per thread setting, in
        the order of ``threads``, when it is a list).

    Raises:
        ConfigError: an empty list, or see :func:`bench`.
    """
    if isinstance(models, (str, bytes, os.PathLike)) or not isinstance(models, Sequence):
        raise ConfigError("compare() takes a list of model paths, Models or task objects")
    if len(models) == 0:
        raise ConfigError("compare() needs at least one artifact")
    reports, _ = _run(list(models), target=target, runs=runs, warmup=warmup, duration_s=duration_s,
                      threads=threads, inputs=inputs, task=task, progress=progress)
    return reports
