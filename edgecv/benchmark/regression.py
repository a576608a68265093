"""Baseline gating: which figures of a report got worse than a baseline by more than a tolerance."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..checks import check_number
from ..errors import ConfigError
from .bench_report import FIGURES, BenchReport

__all__ = ["Regression", "check_baseline", "check_regression", "pair_with_baseline", "DEFAULT_FIGURES"]

log = logging.getLogger("edgecv")

DEFAULT_FIGURES = ("p50_ms", "p90_ms", "mean_ms", "fps")
_UNITS = {"fps": " FPS", "peak_rss_bytes": " bytes"}


@dataclass(frozen=True)
class Regression:
    """One figure that got worse than the baseline allows.

    Attributes:
        label: the report's artifact label.
        figure: the figure's name ("p50_ms", "fps", ...; see ``FIGURES``).
        baseline: its value in the baseline report.
        current: its value now.
        change: how much worse, as a fraction of the baseline (0.25 = 25 % worse).
        tolerance: the allowed fraction.
    """

    label: str
    figure: str
    baseline: float
    current: float
    change: float
    tolerance: float

    def describe(self) -> str:
        """One line for people: "model.tflite: p50_ms 12.30 ms vs baseline 10.00 ms (23.0% worse, tolerance 10%)"."""
        unit = _UNITS.get(self.figure, " ms")
        return (f"{self.label}: {self.figure} {self.current:.2f}{unit} vs baseline {self.baseline:.2f}{unit} "
                f"({100 * self.change:.1f}% worse, tolerance {100 * self.tolerance:g}%)")


def _check_tolerance(tolerance: object) -> float:
    return check_number(tolerance, "tolerance", minimum=0, expected="a non-negative fraction (0.10 for 10%)")


def _warn_if_not_comparable(report: BenchReport, baseline: BenchReport) -> None:
    now, then = report.fingerprint, baseline.fingerprint
    differences = []
    if (now.host.cpu_model, now.host.arch) != (then.host.cpu_model, then.host.arch):
        differences.append(f"CPU {then.host.cpu_model} ({then.host.arch}) -> {now.host.cpu_model} ({now.host.arch})")
    if now.runtime != then.runtime:
        differences.append(f"runtime {then.runtime} -> {now.runtime}")
    if report.threads != baseline.threads:
        differences.append(f"threads {baseline.threads} -> {report.threads}")
    if report.task != baseline.task:
        differences.append(f"task {baseline.task} -> {report.task}")
    if differences:
        log.warning("%s: the baseline was measured differently (%s); the comparison may not be fair",
                    report.label, "; ".join(differences))


def check_baseline(baseline: BenchReport, figures: Sequence[str] = DEFAULT_FIGURES) -> None:
    """Refuse a baseline that would pass anything: a figure NaN, infinite, zero or negative.

    Raises:
        ConfigError: such a figure (missing figures are fine: they are skipped).
    """
    for name in figures:
        then = baseline.figure(name)
        if then is not None and not (math.isfinite(then) and then > 0):
            raise ConfigError(f"{baseline.label}: baseline figure {name} is {then}; a baseline's figures are positive "
                              "finite numbers: measure it again with edgecv bench --json")


def check_regression(report: BenchReport, baseline: BenchReport, tolerance: float = 0.10, *,
                     figures: Sequence[str] = DEFAULT_FIGURES) -> list[Regression]:
    """Figures of *report* worse than *baseline* by more than *tolerance*.

    A time or memory figure regresses when ``current > baseline * (1 + tolerance)``;
    FPS when ``current < baseline * (1 - tolerance)``. Figures missing from
    either report (a load time of an already loaded model) are skipped.

    Args:
        report: the new measurement.
        baseline: the accepted one (e.g. read from ``edgecv bench --json``).
        tolerance: allowed worsening as a fraction (0.10 = 10 %).
        figures: names from ``edgecv.benchmark.FIGURES``.

    Returns:
        The regressions, in the order of *figures*; empty when the report passes.

    Raises:
        ConfigError: negative / non-finite tolerance, an unknown figure name, or a baseline figure that is
            NaN, infinite, zero or negative (such a baseline would pass anything).
    """
    tol = _check_tolerance(tolerance)
    names = list(figures)
    for name in names:
        if name not in FIGURES:
            raise ConfigError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
    check_baseline(baseline, names)
    _warn_if_not_comparable(report, baseline)
    found = []
    for name in names:
        then, now = baseline.figure(name), report.figure(name)
        if then is None or now is None:
            log.info("%s: %s not comparable (baseline %s, now %s); skipped", report.label, name, then, now)
            continue
        if not math.isfinite(now):
            found.append(Regression(report.label, name, then, now, math.inf, tol))
            continue
        higher_is_worse = FIGURES[name][1]
        if higher_is_worse and now > then * (1.0 + tol):
            found.append(Regression(report.label, name, then, now, (now - then) / then, tol))
        elif not higher_is_worse and now < then * (1.0 - tol):
            found.append(Regression(report.label, name, then, now, (then - now) / then, tol))
    return found


def pair_with_baseline(reports: Sequence[BenchReport], baselines: Sequence[BenchReport]
                       ) -> list[tuple[BenchReport, BenchReport]]:
    """Match each report to its baseline: same label, threads and task; else same model hash, threads and task;
    else, with exactly one of each, the two.

    Raises:
        ConfigError: a report without a baseline.
    """
    pairs = []
    for r in reports:
        match = next((b for b in baselines if (b.label, b.threads, b.task) == (r.label, r.threads, r.task)), None)
        if match is None:
            match = next((b for b in baselines
                          if (b.model.sha256, b.threads, b.task) == (r.model.sha256, r.threads, r.task)), None)
        if match is None and len(reports) == 1 and len(baselines) == 1:
            match = baselines[0]
        if match is None:
            have = ", ".join(f"{b.label} (threads {b.threads}, task {b.task})" for b in baselines)
            raise ConfigError(f"the baseline has no report for {r.label} (threads {r.threads}, task {r.task}); "
                              f"it has: {have}. Record a baseline with the same models and --threads")
        pairs.append((r, match))
    return pairs
