"""The benchmarking probe: report contents, honesty against an independent timer, JSON, gating, compare, CLI."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import math
import sys
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import edgecv
from edgecv.benchmark import (
    SCHEMA_VERSION,
    BenchReport,
    bench,
    check_regression,
    compare,
    format_table,
    latency_stats,
    pair_with_baseline,
    plot,
    read_reports,
    reports_from_json,
    reports_to_json,
)
from edgecv.benchmark.host import HostInfo, normalize_arch, target_mismatches
from edgecv.benchmark.memory import parse_proc_status, read_rss
from edgecv.benchmark.progress import Progress
from edgecv.cli import bench as bench_cli
from edgecv.cli.common import parse_threads, parse_tolerance
from edgecv.errors import BackendNotAvailable, ConfigError

QUANT = "classification/mobilenet_v2_1.0_224_quant.tflite"
FACE = "detection/ultraface_rfb_320.onnx"
RUNS = 30


@pytest.fixture(scope="module")
def quant_path(fixtures: Path) -> Path:
    return fixtures / QUANT


@pytest.fixture(scope="module")
def quant_report(quant_path: Path) -> BenchReport:
    return bench(quant_path, runs=RUNS, warmup=3, threads=1)


# -- the report ---------------------------------------------------------------------

@pytest.mark.device
def test_report_has_every_field_with_sane_values(quant_report: BenchReport, quant_path: Path) -> None:
    r = quant_report
    assert r.schema_version == SCHEMA_VERSION
    assert r.label == quant_path.name
    host = r.fingerprint.host
    assert host.logical_cores is not None and host.logical_cores >= 1
    assert host.usable_cores is None or 1 <= host.usable_cores <= host.logical_cores
    assert host.arch and host.os and host.kernel and host.python.split()[-1].count(".") == 2
    assert host.numpy == np.__version__
    assert host.memory_bytes is not None and host.memory_bytes > 100 * 2**20
    if sys.platform.startswith("linux"):
        assert host.cpu_model
    fp = r.fingerprint
    assert fp.runtime.split()[0] in ("ai_edge_litert", "tflite_runtime", "tensorflow.lite")
    assert fp.accelerators == ("cpu",)
    assert fp.target is None and fp.host_matches_target is None and fp.target_mismatches == ()
    m = r.model
    assert m.path == str(quant_path) and m.format == "tflite"
    assert m.size_bytes == quant_path.stat().st_size
    assert m.sha256 == hashlib.sha256(quant_path.read_bytes()).hexdigest()
    assert m.precision == "int8"
    assert [i["shape"] for i in m.inputs] == [[1, 224, 224, 3]] and m.inputs[0]["dtype"] == "uint8"
    assert [o["shape"] for o in m.outputs] == [[1, 1001]]
    assert r.task is None and r.split is None
    assert r.threads == 1
    assert r.input_source == "random"
    assert r.load_ms is not None and r.load_ms > 0
    assert r.first_inference_ms > 0
    assert r.warmup_runs == 3 and r.warmup_mean_ms is not None and r.warmup_mean_ms > 0
    lat = r.latency
    assert r.runs == lat.runs == RUNS == len(r.latencies_ms)
    assert 0 < lat.min_ms <= lat.p50_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
    assert lat.min_ms <= lat.mean_ms <= lat.max_ms
    assert lat.std_ms >= 0
    assert lat.fps == pytest.approx(1000.0 / lat.mean_ms, rel=1e-12)
    samples = np.array(r.latencies_ms)
    assert lat.mean_ms == pytest.approx(samples.mean(), rel=1e-12)
    assert lat.p90_ms == pytest.approx(np.percentile(samples, 90), rel=1e-12)
    assert lat.std_ms == pytest.approx(samples.std(ddof=1), rel=1e-9)
    mem = r.memory
    assert mem.peak_rss_bytes > 0
    if sys.platform.startswith("linux"):
        assert mem.source == "proc"
        assert mem.rss_start_bytes is not None and 0 < mem.rss_start_bytes <= mem.peak_rss_bytes
        assert mem.growth_bytes == mem.rss_end_bytes - mem.rss_start_bytes
    assert mem.shared is False
    assert r.wall_s >= sum(r.latencies_ms) / 1000.0
    assert r.interleaved_with == ()
    assert datetime.fromisoformat(r.created_utc).tzinfo is not None
    assert r.edgecv_version == edgecv.__version__
    assert any("p99 from only 30 runs" in w for w in r.warnings)


@pytest.mark.device
def test_latency_stats_pure_function() -> None:
    stats = latency_stats([4.0, 1.0, 3.0, 2.0])
    assert (stats.runs, stats.min_ms, stats.max_ms, stats.mean_ms) == (4, 1.0, 4.0, 2.5)
    assert stats.p50_ms == 2.5 and stats.p90_ms == pytest.approx(3.7) and stats.fps == 400.0
    assert stats.std_ms == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert latency_stats([5.0]).std_ms == 0.0
    for bad in ([], [1.0, -1.0], [1.0, math.nan], [0.0, 0.0]):
        with pytest.raises(ConfigError):
            latency_stats(bad)


@pytest.mark.device
def test_table_shows_the_figures(quant_report: BenchReport) -> None:
    lines = format_table([quant_report]).splitlines()
    rows = {line.split("  ")[0].strip(): line for line in lines}
    assert lines[0].startswith("host: ")
    assert rows["runs"].split()[-1] == str(RUNS)
    assert rows["FPS"].split()[-1] == f"{quant_report.latency.fps:.1f}"
    printed = rows["p50"].split()[-2]
    decimals = len(printed.partition(".")[2])
    assert decimals >= 1, f"p50 printed without decimals: {printed!r}"
    # the table keeps about four significant figures (112.1 ms, 4.062 ms): agree to the last printed digit
    assert float(printed) == pytest.approx(quant_report.latency.p50_ms, abs=0.5 * 10.0**-decimals + 1e-9)


# -- honesty -------------------------------------------------------------------------

def _independent_invoke_ms(model_path: Path, runs: int, interpreter: object | None = None) -> tuple[list[float], object]:
    """Time ``Interpreter.invoke()`` with a plain perf_counter loop, outside edgecv's Model."""
    from edgecv.backends.litert import resolve_interpreter

    if interpreter is None:
        cls, _, _ = resolve_interpreter()
        interpreter = cls(model_path=str(model_path), num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        rng = np.random.default_rng(1)
        interpreter.set_tensor(detail["index"], rng.integers(0, 256, size=detail["shape"], dtype=np.uint8))
        interpreter.invoke()
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1000.0)
    return times, interpreter


def _honesty_ratio(model: object, quant_path: Path, interpreter: object | None) -> tuple[float, object]:
    """Median over adjacent block pairs of probe-block p50 / independent-block p50.

    Blocks of 10 calls alternate, and each probe block is compared only with the
    independent block run right before it: a burst of load from another process
    hits one pair, not the median of twelve.
    """
    ratios = []
    for _ in range(12):
        block, interpreter = _independent_invoke_ms(quant_path, 10, interpreter)
        probe = bench(model, runs=10, warmup=1).latencies_ms
        ratios.append(float(np.median(probe)) / float(np.median(block)))
    return float(np.median(ratios)), interpreter


@pytest.mark.device
def test_probe_p50_agrees_with_an_independent_timer(quant_path: Path) -> None:
    """The one ratio bound the issue asks for: probe p50 within 15% of a bare perf_counter loop.

    A shared CI runner can be busy for seconds at a time, so up to three
    measurements are taken and the test passes when one of them is within the
    bound; an overhead that is really in the probe shows in every one of them.
    """
    model = edgecv.load(quant_path, num_threads=1)
    interpreter = None
    seen = []
    try:
        for _ in range(3):
            ratio, interpreter = _honesty_ratio(model, quant_path, interpreter)
            seen.append(ratio)
            if 0.85 <= ratio <= 1.15:
                break
    finally:
        model.close()
    assert 0.85 <= seen[-1] <= 1.15, "probe p50 / independent p50 = " + ", ".join(f"{r:.3f}" for r in seen)


# -- JSON ------------------------------------------------------------------------------------

@pytest.mark.device
def test_json_round_trip(quant_report: BenchReport, tmp_path: Path) -> None:
    text = quant_report.to_json()
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["latency"]["p50_ms"] == quant_report.latency.p50_ms
    assert len(data["latencies_ms"]) == RUNS
    assert BenchReport.from_json(text) == quant_report
    saved = quant_report.save(tmp_path / "r.json")
    assert BenchReport.load(saved) == quant_report
    pair = [quant_report, dataclasses.replace(quant_report, label="other")]
    assert reports_from_json(reports_to_json(pair)) == pair
    assert reports_from_json(text) == [quant_report]


@pytest.mark.device
def test_json_refuses_newer_schema_and_broken_documents(quant_report: BenchReport, tmp_path: Path) -> None:
    data = quant_report.to_dict()
    newer = dict(data, schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(ConfigError, match="newer"):
        BenchReport.from_json(json.dumps(newer))
    for broken in (dict(data, schema_version="1"), {k: v for k, v in data.items() if k != "schema_version"}):
        with pytest.raises(ConfigError, match="schema_version"):
            BenchReport.from_dict(broken)
    missing = {k: v for k, v in data.items() if k != "latency"}
    with pytest.raises(ConfigError, match="latency"):
        BenchReport.from_dict(missing)
    mistyped = json.loads(quant_report.to_json())
    mistyped["latency"]["p50_ms"] = "fast"
    with pytest.raises(ConfigError, match="p50_ms"):
        BenchReport.from_dict(mistyped)
    with pytest.raises(ConfigError, match="not valid JSON"):
        BenchReport.from_json("{not json")
    with pytest.raises(ConfigError, match="reports"):
        BenchReport.from_json(reports_to_json([quant_report, quant_report]))
    with pytest.raises(ConfigError, match="does not exist"):
        read_reports(tmp_path / "missing.json")


# -- baseline gating ----------------------------------------------------------------------------

def _faster(report: BenchReport, factor: float) -> BenchReport:
    lat = report.latency
    scaled = dataclasses.replace(lat, mean_ms=lat.mean_ms * factor, p50_ms=lat.p50_ms * factor,
                                 p90_ms=lat.p90_ms * factor, fps=lat.fps / factor)
    return dataclasses.replace(report, latency=scaled)


@pytest.mark.device
def test_report_against_itself_passes(quant_report: BenchReport) -> None:
    assert check_regression(quant_report, quant_report) == []
    assert check_regression(quant_report, quant_report, tolerance=0.0) == []


@pytest.mark.device
def test_doctored_faster_baseline_names_the_figures(quant_report: BenchReport) -> None:
    baseline = _faster(quant_report, 0.5)  # the baseline claims twice the speed
    found = check_regression(quant_report, baseline, tolerance=0.10)
    assert [r.figure for r in found] == ["p50_ms", "p90_ms", "mean_ms", "fps"]
    p50 = found[0]
    assert p50.baseline == pytest.approx(quant_report.latency.p50_ms * 0.5)
    assert p50.current == quant_report.latency.p50_ms
    assert p50.change == pytest.approx(1.0)
    assert found[3].change == pytest.approx(0.5)
    assert "p50_ms" in p50.describe() and "100.0% worse" in p50.describe()
    # within tolerance: 5% slower against 10% allowed passes; against 1% it fails
    slight = _faster(quant_report, 1 / 1.05)
    assert check_regression(quant_report, slight, tolerance=0.10) == []
    assert [r.figure for r in check_regression(quant_report, slight, tolerance=0.01)] == \
        ["p50_ms", "p90_ms", "mean_ms", "fps"]
    assert [r.figure for r in check_regression(quant_report, baseline, figures=("fps",))] == ["fps"]


@pytest.mark.device
def test_gating_arguments_are_checked(quant_report: BenchReport) -> None:
    for bad in (-0.1, math.nan, "10%", True):
        with pytest.raises(ConfigError, match="tolerance"):
            check_regression(quant_report, quant_report, tolerance=bad)
    with pytest.raises(ConfigError, match="unknown figure"):
        check_regression(quant_report, quant_report, figures=("p42_ms",))
    other = dataclasses.replace(quant_report, label="x.tflite", threads=4)
    with pytest.raises(ConfigError, match="no report for"):
        pair_with_baseline([quant_report, other], [quant_report])
    assert pair_with_baseline([quant_report], [other]) == [(quant_report, other)]


# -- compare, sweep, inputs, tasks ------------------------------------------------------------------

@pytest.mark.device
def test_compare_tflite_and_onnx_interleaved(fixtures: Path) -> None:
    reports = compare([fixtures / QUANT, fixtures / FACE], runs=20, warmup=2, threads=1)
    assert [r.label for r in reports] == [Path(QUANT).name, Path(FACE).name]
    assert [r.runs for r in reports] == [20, 20]
    assert [r.warmup_runs for r in reports] == [2, 2]
    assert reports[0].interleaved_with == (Path(FACE).name,)
    assert reports[1].interleaved_with == (Path(QUANT).name,)
    assert reports[1].fingerprint.runtime.startswith("onnxruntime")
    assert reports[1].fingerprint.accelerators == ("CPUExecutionProvider",)
    assert reports[1].model.precision == "fp32" and reports[1].model.inputs[0]["shape"] == [1, 3, 240, 320]
    assert all(r.memory.shared for r in reports)
    assert reports[0].wall_s == reports[1].wall_s


@pytest.mark.device
def test_compare_two_copies_gets_distinct_labels(fixtures: Path) -> None:
    path = fixtures / QUANT
    reports = compare([path, path], runs=5, warmup=0)
    assert [r.runs for r in reports] == [5, 5]
    assert reports[0].label != reports[1].label
    assert reports[0].model.sha256 == reports[1].model.sha256
    assert reports[0].warmup_mean_ms is None


@pytest.mark.device
def test_thread_sweep_returns_one_report_per_setting(fixtures: Path) -> None:
    reports = bench(fixtures / QUANT, runs=5, warmup=1, threads=[1, 2])
    assert isinstance(reports, list)
    assert [r.threads for r in reports] == [1, 2]
    assert [r.runs for r in reports] == [5, 5]


@pytest.mark.device
def test_duration_bounds_the_measured_phase(fixtures: Path) -> None:
    report = bench(fixtures / QUANT, duration_s=0.2, warmup=0, threads=1)
    assert report.runs >= 1
    capped = bench(fixtures / QUANT, duration_s=60.0, runs=4, warmup=0, threads=1)
    assert capped.runs == 4


@pytest.mark.device
def test_model_with_real_images_uses_its_preprocessor(fixtures: Path) -> None:
    report = bench(fixtures / QUANT, runs=4, warmup=0, inputs=fixtures / "images")
    assert report.input_source.startswith(str(fixtures / "images"))
    assert report.runs == 4
    one = bench(fixtures / QUANT, runs=2, warmup=0, inputs=fixtures / "images" / "cat.bmp")
    assert one.input_source == str(fixtures / "images" / "cat.bmp")


@pytest.mark.device
def test_task_benchmark_reports_the_split(fixtures: Path) -> None:
    report = bench(fixtures / QUANT, task="classify", runs=20, warmup=2, threads=1,
                   inputs=fixtures / "images" / "cat.bmp")
    assert report.task == "classification"
    split = report.split
    assert split is not None
    assert split.inference.median_ms > 0 and split.preprocess.median_ms > 0 and split.postprocess.median_ms >= 0
    assert split.inference.mean_ms >= 0
    # the three stages happen inside the timed call
    total = split.preprocess.median_ms + split.inference.median_ms + split.postprocess.median_ms
    assert total <= report.latency.max_ms
    table = format_table([report])
    assert "inference p50 / mean" in table


@pytest.mark.device
def test_task_object_is_benchmarked_as_given(fixtures: Path) -> None:
    from edgecv.tasks.classifier import Classifier

    model = edgecv.load(fixtures / QUANT)
    task = Classifier(model)
    report = bench(task, runs=5, warmup=0)
    assert report.task == "classification" and report.load_ms is None and report.split is not None
    assert report.input_source == "random image 224x224"
    task.classify(np.zeros((10, 10, 3), np.uint8))  # still usable: bench did not close it
    with pytest.raises(ConfigError, match="already loaded"):
        bench(task, threads=2, runs=1)
    model.close()


@pytest.mark.device
def test_bad_arguments_raise_config_errors(fixtures: Path, tmp_path: Path) -> None:
    path = fixtures / QUANT
    cases = [dict(runs=0), dict(runs=2.5), dict(warmup=-1), dict(duration_s=0), dict(duration_s=math.inf),
             dict(threads=[]), dict(threads=[1, 1]), dict(threads=0), dict(threads="2"),
             dict(inputs=tmp_path / "nope.jpg"), dict(inputs=tmp_path), dict(inputs=[]), dict(inputs=3),
             dict(task="clasify")]
    for kwargs in cases:
        with pytest.raises(ConfigError):
            bench(path, **kwargs)
    model = edgecv.load(path)
    with pytest.raises(ConfigError, match="already loaded"):
        bench(model, threads=1)
    model.close()
    with pytest.raises(ConfigError):
        compare([])
    with pytest.raises(ConfigError):
        compare(str(path))
    with pytest.raises(ConfigError):
        bench(42)


# -- memory, host, progress ----------------------------------------------------------------------------------

@pytest.mark.device
def test_proc_status_parsing_and_reading() -> None:
    text = "Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t1\n"
    assert parse_proc_status(text) == (1024 * 1024, 2048 * 1024)
    assert parse_proc_status("Name: x\n") == (None, None)
    sample = read_rss()
    assert sample.peak_bytes > 0
    if sys.platform.startswith("linux"):
        assert sample.source == "proc" and 0 < sample.rss_bytes <= sample.peak_bytes


def _host(**changes: object) -> HostInfo:
    base = HostInfo(cpu_model="Cortex-A72", logical_cores=4, usable_cores=4, arch="aarch64", memory_bytes=4 << 30,
                    os="Linux", os_release=None, kernel="6.1", python="CPython 3.11.2", numpy="1.26.4",
                    board_model="Raspberry Pi 4 Model B Rev 1.4", cpu_governor="ondemand", temperature_c=55.0)
    return dataclasses.replace(base, **changes)


@pytest.mark.device
def test_host_matches_target_rules() -> None:
    rpi4 = SimpleNamespace(name="rpi4", arch="aarch64", host_match=("Raspberry Pi 4",), delegate="xnnpack",
                           onnx_providers=())
    assert target_mismatches(_host(), rpi4, model_format="tflite", accelerators=("cpu",)) == []
    wrong_board = target_mismatches(_host(board_model="Raspberry Pi 5 Model B"), rpi4, model_format="tflite",
                                    accelerators=("cpu",))
    assert len(wrong_board) == 1 and "Raspberry Pi 5" in wrong_board[0]
    x86 = target_mismatches(_host(arch="x86_64", board_model=None), rpi4, model_format="tflite",
                            accelerators=("cpu",))
    assert len(x86) == 2 and "x86_64" in x86[0] and "unreadable" in x86[1]
    coral = SimpleNamespace(name="coral-usb", arch="any", host_match=(), delegate="edgetpu", onnx_providers=())
    assert "Edge TPU" in target_mismatches(_host(), coral, model_format="tflite", accelerators=("cpu",))[0]
    assert target_mismatches(_host(), coral, model_format="tflite", accelerators=("edgetpu",)) == []
    orin = SimpleNamespace(name="jetson-orin", arch="arm64", host_match=(), delegate=None,
                           onnx_providers=("TensorrtExecutionProvider", "CPUExecutionProvider"))
    assert "Tensorrt" in target_mismatches(_host(), orin, model_format="onnx",
                                           accelerators=("CPUExecutionProvider",))[0]
    assert normalize_arch("AMD64") == "x86_64" and normalize_arch("arm64") == "aarch64"


@pytest.mark.device
def test_cpu_target_on_this_host(fixtures: Path) -> None:
    report = bench(fixtures / QUANT, target="cpu", runs=3, warmup=0)
    assert report.fingerprint.target == "cpu"
    assert report.fingerprint.host_matches_target is True


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.device
def test_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, fixtures: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    import edgecv.benchmark.progress as progress_module

    monkeypatch.setattr(progress_module, "_SHOW_AFTER_S", 0.0)
    monkeypatch.setattr(progress_module, "_INTERVAL_S", 0.0)
    pipe = io.StringIO()
    bar = Progress("m", stream=pipe)
    bar.update("runs", 1, 10)
    bar.close()
    assert pipe.getvalue() == ""
    tty = _FakeTerminal()
    bar = Progress("m.tflite", stream=tty)
    bar.update("runs", 5, 10)
    assert "m.tflite: runs 5/10 (50%)" in tty.getvalue()
    bar.close()
    assert tty.getvalue().endswith("\r")
    off = _FakeTerminal()
    Progress("m", enabled=False, stream=off).update("runs", 1, 2)
    assert off.getvalue() == ""
    bench(fixtures / QUANT, runs=3, warmup=1)  # pytest's captured stderr is not a terminal
    assert capsys.readouterr().err == ""


# -- plot -------------------------------------------------------------------------------------------------------

@pytest.mark.device
def test_plot_without_matplotlib_names_the_extra(quant_report: BenchReport, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BackendNotAvailable, match=r"edgecv\[plot\]"):
        plot([quant_report], tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


def test_plot_writes_an_image(quant_report: BenchReport, fixtures: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import cv2

    task_report = bench(fixtures / QUANT, task="classify", runs=5, warmup=0)
    out = plot([quant_report, task_report], tmp_path / "bench.png")
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    assert [p.name for p in tmp_path.iterdir()] == ["bench.png"]  # no temporary file left behind
    with pytest.raises(ConfigError, match="suffix"):
        plot(quant_report, tmp_path / "bench.xyz")


# -- CLI ------------------------------------------------------------------------------------------------------------

def _cli(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="edgecv bench")
    bench_cli.add_arguments(parser)
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = bench_cli.run(args, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.device
def test_cli_parsers() -> None:
    assert parse_threads("4") == 4
    assert parse_threads("1,2,4") == [1, 2, 4]
    assert parse_tolerance("10%") == pytest.approx(0.10)
    assert parse_tolerance("0.05") == pytest.approx(0.05)
    assert parse_tolerance("0%") == 0.0
    for bad in ("0", "1,1", "a", "2,", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_threads(bad)
    for bad in ("10", "-5%", "fast", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_tolerance(bad)


@pytest.mark.device
def test_cli_json_and_baseline_gating(fixtures: Path, tmp_path: Path) -> None:
    model = str(fixtures / QUANT)
    out_json = tmp_path / "now.json"
    code, out, err = _cli([model, "--runs", "10", "--warmup", "1", "--threads", "1", "--json", str(out_json)])
    assert code == 0 and err == ""
    assert "p50" in out and out.startswith("host: ")
    (report,) = read_reports(out_json)
    assert report.runs == 10 and report.threads == 1

    code, out, err = _cli([model, "--runs", "5", "--threads", "1", "--json", "-"])
    assert code == 0 and BenchReport.from_json(out).runs == 5

    slower = tmp_path / "slower.json"
    slower.write_text(_faster(report, 3.0).to_json())
    code, out, err = _cli([model, "--runs", "8", "--threads", "1", "--baseline", str(slower), "--tolerance", "10%"])
    assert code == 0 and "baseline check passed" in err

    faster = tmp_path / "faster.json"
    faster.write_text(_faster(report, 0.2).to_json())
    code, out, err = _cli([model, "--runs", "8", "--threads", "1", "--baseline", str(faster), "--tolerance", "10%"])
    assert code == bench_cli.EXIT_REGRESSION
    lines = [line for line in err.splitlines() if line.startswith("regression: ")]
    assert {line.split()[2] for line in lines} == {"p50_ms", "p90_ms", "mean_ms", "fps"}

    with pytest.raises(ConfigError, match="--baseline"):
        _cli([model, "--runs", "1", "--tolerance", "10%"])


@pytest.mark.device
def test_cli_compare_sweep_writes_array(fixtures: Path, tmp_path: Path) -> None:
    out_json = tmp_path / "all.json"
    code, out, _ = _cli([str(fixtures / QUANT), str(fixtures / FACE), "--runs", "3", "--warmup", "0",
                         "--threads", "1,2", "--json", str(out_json)])
    assert code == 0
    reports = read_reports(out_json)
    assert [(r.label, r.threads) for r in reports] == [
        (Path(QUANT).name, 1), (Path(FACE).name, 1), (Path(QUANT).name, 2), (Path(FACE).name, 2)]
    assert "@2t" in out.splitlines()[2]
