"""Driving edgetpu_compiler and parsing its log (format as documented by coral.ai and the google-coral issues)."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys

import pytest

from converters.edgetpu import (
    INSTALL_HINT,
    compile_for_edgetpu,
    compiler_command,
    parse_compiler_log,
    parse_size_bytes,
)
from edgecv.errors import ConfigError, ConversionError, ModelLoadError

# only the standard library and the fixtures: these run in the lean device environment too
pytestmark = pytest.mark.device

MIB = 1 << 20
KIB = 1 << 10

ALL_MAPPED = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 1046 ms.

Input model: mobilenet_v2_quant.tflite
Input size: 3.44MiB
Output model: mobilenet_v2_quant_edgetpu.tflite
Output size: 3.89MiB
On-chip memory used for caching model parameters: 3.75MiB
On-chip memory remaining for caching model parameters: 3.29MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 66
Operation log: mobilenet_v2_quant_edgetpu.log
See the operation log file for individual operation details.

Operator                       Count      Status

ADD                            10         Mapped to Edge TPU
AVERAGE_POOL_2D                1          Mapped to Edge TPU
CONV_2D                        36         Mapped to Edge TPU
DEPTHWISE_CONV_2D              17         Mapped to Edge TPU
RESHAPE                        1          Mapped to Edge TPU
SOFTMAX                        1          Mapped to Edge TPU
Compilation child process completed within timeout period.
Compilation succeeded!
"""

PARTIAL = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 2270 ms.

Input model: detector_int8.tflite
Input size: 5.21MiB
Output model: detector_int8_edgetpu.tflite
Output size: 6.51MiB
On-chip memory used for caching model parameters: 6.02MiB
On-chip memory remaining for caching model parameters: 1.02MiB
Off-chip memory used for streaming uncached model parameters: 41.75KiB
Number of Edge TPU subgraphs: 1
Total number of operations: 267
Operation log: detector_int8_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 255
Number of operations that will run on CPU: 12

Operator                       Count      Status

DEQUANTIZE                     2          Operation is working on an unsupported data type
DEPTHWISE_CONV_2D              80         Mapped to Edge TPU
LOGISTIC                       1          Operation is otherwise supported, but not mapped due to some unspecified limitation
CONCATENATION                  1          Mapped to Edge TPU
CONCATENATION                  1          More than one subgraph is not supported
CONV_2D                        174        Mapped to Edge TPU
TRANSPOSE                      7          Operation not supported
CUSTOM                         1          Operation is working on an unsupported data type
Compilation child process completed within timeout period.
Compilation succeeded!
"""

LARGE_ACTIVATIONS = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.
ERROR: Restored original execution plan after delegate application failure.
Compilation failed: Compilation failed due to large activation tensors in model.
Compilation child process completed within timeout period.
Compilation failed!
"""

NOT_QUANTIZED = """\
Edge TPU Compiler version 15.0.340273435
Invalid model: float_model.tflite
Model not quantized
"""

NOTHING_MAPPED = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 310 ms.

Input model: odd.tflite
Input size: 1.10MiB
Output model: odd_edgetpu.tflite
Output size: 1.10MiB
On-chip memory used for caching model parameters: 0.00B
On-chip memory remaining for caching model parameters: 7.03MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 0
Total number of operations: 12
Operation log: odd_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 0
Number of operations that will run on CPU: 12

Operator                       Count      Status

FULLY_CONNECTED                4          Operation is working on an unsupported data type
QUANTIZE                       4          Operation is otherwise supported, but not mapped due to some unspecified limitation
SOFTMAX                        4          More than one subgraph is not supported
Compilation child process completed within timeout period.
Compilation succeeded!
"""

# compiler 2.0 printed the cache capacity ("available") instead of what remains, and no timeout lines
OLD_FORMAT = """\
Edge TPU Compiler version 2.0.267685300

Model compiled successfully in 313 ms.

Input model: output_tflite_graph.tflite
Input size: 5.33MiB
Output model: output_tflite_graph_edgetpu.tflite
Output size: 5.75MiB
On-chip memory available for caching model parameters: 7.62MiB
On-chip memory used for caching model parameters: 5.66MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 64
Operation log: output_tflite_graph_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 63
Number of operations that will run on CPU: 1

Operator                       Count      Status

CUSTOM                         1          Operation is working on an unsupported data type
CONV_2D                        34         Mapped to Edge TPU
"""

# -d (search delegate) with -n 2: a failed first try, then one block per segment
SEARCH_AND_SEGMENTS = """\
Edge TPU Compiler version 16.0.384591198
Searching for valid delegate with step 10
Try to compile segment with 95 ops
Started a compilation timeout timer of 180 seconds.
Compilation child process completed within timeout period.
Compilation failed!
Try to compile segment with 84 ops
Intermediate tensors: model/block_7/add
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 1200 ms.

Input model: net_segment_0_of_2.tflite
Input size: 2.00MiB
Output model: net_segment_0_of_2_edgetpu.tflite
Output size: 2.50MiB
On-chip memory used for caching model parameters: 2.25MiB
On-chip memory remaining for caching model parameters: 4.75MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 40
Operation log: net_segment_0_of_2_edgetpu.log
See the operation log file for individual operation details.

Model compiled successfully in 900 ms.

Input model: net_segment_1_of_2.tflite
Input size: 1.50MiB
Output model: net_segment_1_of_2_edgetpu.tflite
Output size: 1.75MiB
On-chip memory used for caching model parameters: 1.50MiB
On-chip memory remaining for caching model parameters: 5.50MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 44
Operation log: net_segment_1_of_2_edgetpu.log
See the operation log file for individual operation details.
Compilation child process completed within timeout period.
Compilation succeeded!
"""


# --- the log parser ---


def test_parse_all_mapped():
    log = parse_compiler_log(ALL_MAPPED)
    assert log.compiler_version == "16.0.384591198" and log.compiled and log.errors == ()
    (seg,) = log.segments
    assert seg.compile_time_ms == 1046.0
    assert (seg.input_model, seg.output_model) == ("mobilenet_v2_quant.tflite", "mobilenet_v2_quant_edgetpu.tflite")
    assert seg.input_size_bytes == round(3.44 * MIB) and seg.output_size_bytes == round(3.89 * MIB)
    assert seg.on_chip_memory_used_bytes == round(3.75 * MIB)
    assert seg.on_chip_memory_remaining_bytes == round(3.29 * MIB)
    assert seg.off_chip_memory_used_bytes == 0
    assert (seg.edgetpu_subgraphs, seg.total_ops, seg.ops_on_edgetpu, seg.ops_on_cpu) == (1, 66, 66, 0)
    assert seg.operation_log == "mobilenet_v2_quant_edgetpu.log"
    assert [(m.op, m.count) for m in seg.operators] == [("ADD", 10), ("AVERAGE_POOL_2D", 1), ("CONV_2D", 36),
                                                         ("DEPTHWISE_CONV_2D", 17), ("RESHAPE", 1), ("SOFTMAX", 1)]
    assert all(m.on_edgetpu for m in seg.operators) and not seg.nothing_mapped


def test_parse_partially_mapped_with_every_reason():
    log = parse_compiler_log(PARTIAL)
    (seg,) = log.segments
    assert log.compiled and (seg.ops_on_edgetpu, seg.ops_on_cpu, seg.total_ops) == (255, 12, 267)
    assert seg.off_chip_memory_used_bytes == round(41.75 * KIB)
    cpu = [(m.op, m.count, m.status) for m in seg.operators if not m.on_edgetpu]
    assert cpu == [
        ("DEQUANTIZE", 2, "Operation is working on an unsupported data type"),
        ("LOGISTIC", 1, "Operation is otherwise supported, but not mapped due to some unspecified limitation"),
        ("CONCATENATION", 1, "More than one subgraph is not supported"),
        ("TRANSPOSE", 7, "Operation not supported"),
        ("CUSTOM", 1, "Operation is working on an unsupported data type"),
    ]
    assert sum(m.count for m in seg.operators if m.on_edgetpu) == 255   # table agrees with the summary line


def test_parse_failed_compiles():
    failed = parse_compiler_log(LARGE_ACTIVATIONS)
    assert not failed.compiled and failed.segments == ()
    assert failed.errors == ("ERROR: Restored original execution plan after delegate application failure.",
                             "Compilation failed: Compilation failed due to large activation tensors in model.")
    invalid = parse_compiler_log(NOT_QUANTIZED)
    assert not invalid.compiled and invalid.compiler_version == "15.0.340273435"
    assert invalid.errors == ("Invalid model: float_model.tflite", "Model not quantized")


def test_parse_nothing_mapped_is_flagged():
    (seg,) = parse_compiler_log(NOTHING_MAPPED).segments
    assert seg.nothing_mapped and (seg.edgetpu_subgraphs, seg.ops_on_edgetpu, seg.ops_on_cpu) == (0, 0, 12)


def test_parse_old_format_and_segments():
    (old,) = parse_compiler_log(OLD_FORMAT).segments
    assert parse_compiler_log(OLD_FORMAT).compiled                # no verdict lines in that version
    assert old.on_chip_memory_remaining_bytes == round(7.62 * MIB) - round(5.66 * MIB)
    assert (old.ops_on_edgetpu, old.ops_on_cpu) == (63, 1)
    log = parse_compiler_log(SEARCH_AND_SEGMENTS)
    assert log.compiled and len(log.segments) == 2
    assert [s.output_model for s in log.segments] == ["net_segment_0_of_2_edgetpu.tflite",
                                                      "net_segment_1_of_2_edgetpu.tflite"]
    # no per-op summary when all ops of a segment are mapped: everything counts as on the Edge TPU
    assert [(s.ops_on_edgetpu, s.ops_on_cpu) for s in log.segments] == [(40, 0), (44, 0)]
    assert [s.compile_time_ms for s in log.segments] == [1200.0, 900.0]


def test_parse_size_bytes():
    assert parse_size_bytes("6.02MiB") == round(6.02 * MIB)
    assert parse_size_bytes("41.75KiB") == round(41.75 * KIB)
    assert parse_size_bytes("0.00B") == 0 and parse_size_bytes("1.5GiB") == 3 * (1 << 29)
    assert parse_size_bytes("lots") is None
    with pytest.raises(ConfigError):
        parse_compiler_log(b"bytes")


# --- the command line ---


def test_compiler_command_flags(tmp_path):
    model = tmp_path / "m.tflite"
    assert compiler_command(model, tmp_path) == ["edgetpu_compiler", "-o", str(tmp_path), "-s", str(model)]
    full = compiler_command(model, tmp_path, num_segments=2, search_delegate=True, delegate_search_step=10,
                            enable_multiple_subgraphs=True, min_runtime_version=13,
                            intermediate_tensors=["a/b", "c"], compiler_timeout_s=300)
    assert full == ["edgetpu_compiler", "-o", str(tmp_path), "-s", "-a", "-d", "-k", "10", "-n", "2", "-m", "13",
                    "-i", "a/b,c", "-t", "300", str(model)]
    for bad in (dict(num_segments=0), dict(num_segments=True), dict(min_runtime_version=-1),
                dict(delegate_search_step=5), dict(intermediate_tensors=[""])):
        with pytest.raises(ConfigError):
            compiler_command(model, tmp_path, **bad)


# --- running it ---

_FAKE = '''\
#!{python}
"""Stands in for edgetpu_compiler: prints a log in the documented format and writes the files it names."""
import os, sys, time
args = sys.argv[1:]
open(os.environ["FAKE_ARGV_FILE"], "w").write("\\n".join(args))
out = args[args.index("-o") + 1]
model = args[-1]
stem = os.path.splitext(os.path.basename(model))[0]
mode = os.environ.get("FAKE_MODE", "all")
if mode == "sleep":
    time.sleep(30)
logs = {logs}
text = logs[mode].replace("MODEL_STEM", stem)
print(text)
if mode in ("fail", "invalid"):
    sys.exit(1)
if mode != "nofile":
    with open(os.path.join(out, stem + "_edgetpu.tflite"), "wb") as f:
        f.write(open(model, "rb").read() + b"compiled")
    with open(os.path.join(out, stem + "_edgetpu.log"), "w") as f:
        f.write(text)
'''


def _as_stem(log: str, stem_in_log: str) -> str:
    return log.replace(stem_in_log, "MODEL_STEM")


@pytest.fixture()
def fake_compiler(tmp_path, monkeypatch):
    logs = {
        "all": _as_stem(ALL_MAPPED, "mobilenet_v2_quant"),
        "partial": _as_stem(PARTIAL, "detector_int8"),
        "zero": _as_stem(NOTHING_MAPPED, "odd"),
        "fail": LARGE_ACTIVATIONS,
        "invalid": NOT_QUANTIZED,
        "nofile": _as_stem(ALL_MAPPED, "mobilenet_v2_quant"),
        "sleep": "",
    }
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text(_FAKE.format(python=sys.executable, logs=repr(logs)))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("FAKE_ARGV_FILE", str(tmp_path / "argv.txt"))
    return tmp_path / "argv.txt"


def _dummy_model(folder, name="net.tflite"):
    path = folder / name
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    return path


def _leftovers(folder):
    return sorted(p for p in os.listdir(folder) if p.startswith("."))


def test_missing_compiler_gives_the_command_and_install_hint(tmp_path, monkeypatch, fixtures):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    model = tmp_path / "mobilenet.tflite"
    shutil.copy(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite", model)
    out = tmp_path / "out"
    out.mkdir()
    result = compile_for_edgetpu(model, out)
    assert not result.ok and not result.compiler_found
    assert result.command_line == f"edgetpu_compiler -o {shlex.quote(str(out))} -s {shlex.quote(str(model))}"
    assert result.install_hint == INSTALL_HINT and "apt-get install edgetpu-compiler" in result.install_hint
    assert "x86-64" in result.failure and os.listdir(out) == []
    with pytest.raises(ConversionError, match="not installed"):
        result.raise_for_failure()
    assert result.to_dict()["command"][0] == "edgetpu_compiler"


def test_compile_all_mapped_with_fake_compiler(tmp_path, fake_compiler, fixtures):
    model = tmp_path / "mobilenet.tflite"
    shutil.copy(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite", model)
    out = tmp_path / "out"
    out.mkdir()
    result = compile_for_edgetpu(model, out)
    assert result.ok and result.compiler_found and result.returncode == 0
    assert result.output_models == (str(out / "mobilenet_edgetpu.tflite"),)
    assert result.log_files == (str(out / "mobilenet_edgetpu.log"),)
    assert (out / "mobilenet_edgetpu.tflite").read_bytes().endswith(b"compiled")
    assert (result.ops_on_edgetpu, result.ops_on_cpu) == (66, 0)
    assert _leftovers(out) == []                                   # the temporary work folder is gone
    argv = fake_compiler.read_text().splitlines()
    assert argv[0] == "-o" and os.path.dirname(argv[1]) == str(out) and argv[2] == "-s" and argv[-1] == str(model)
    assert result.raise_for_failure() is result
    assert "compiled for the Edge TPU" in result.to_text()


def test_compile_partial_passes_flags_and_reports_cpu_ops(tmp_path, fake_compiler, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "partial")
    model = _dummy_model(tmp_path)
    result = compile_for_edgetpu(model, num_segments=2, enable_multiple_subgraphs=True, check_model=False)
    assert result.ok and result.output_model == str(tmp_path / "net_edgetpu.tflite")
    assert (result.ops_on_edgetpu, result.ops_on_cpu) == (255, 12)
    argv = fake_compiler.read_text().splitlines()
    assert "-a" in argv and argv[argv.index("-n") + 1] == "2"
    assert "CPU: TRANSPOSE x7: Operation not supported" in result.to_text()


def test_zero_ops_mapped_is_a_failure(tmp_path, fake_compiler, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "zero")
    model = _dummy_model(tmp_path)
    result = compile_for_edgetpu(model, check_model=False)
    assert not result.ok and result.returncode == 0
    assert "mapped no operation" in result.failure and "unsupported data type" in result.failure
    assert not (tmp_path / "net_edgetpu.tflite").exists() and _leftovers(tmp_path) == []
    with pytest.raises(ConversionError, match="mapped no operation"):
        result.raise_for_failure()


@pytest.mark.parametrize("mode, reason", [
    ("fail", "large activation tensors"),
    ("invalid", "Model not quantized"),
    ("nofile", "wrote no"),
])
def test_failed_compiles_leave_nothing_behind(tmp_path, fake_compiler, monkeypatch, mode, reason):
    monkeypatch.setenv("FAKE_MODE", mode)
    model = _dummy_model(tmp_path)
    result = compile_for_edgetpu(model, check_model=False)
    assert not result.ok and reason in result.failure
    assert sorted(os.listdir(tmp_path)) == sorted(["net.tflite", "bin", "argv.txt"])


def test_timeout_stops_the_compiler(tmp_path, fake_compiler, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "sleep")
    model = _dummy_model(tmp_path)
    result = compile_for_edgetpu(model, check_model=False, timeout_s=1.0)
    assert not result.ok and "did not finish within 1 s" in result.failure
    assert _leftovers(tmp_path) == []


def test_bad_inputs_are_refused_before_running(tmp_path, fixtures, fake_compiler):
    with pytest.raises(ModelLoadError):
        compile_for_edgetpu(tmp_path / "absent.tflite")
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"\x08\x07")
    with pytest.raises(ConfigError, match=".tflite"):
        compile_for_edgetpu(onnx_file)
    with pytest.raises(ConfigError, match="does not exist"):
        compile_for_edgetpu(_dummy_model(tmp_path), tmp_path / "nowhere", check_model=False)
    with pytest.raises(ConfigError, match="timeout_s"):
        compile_for_edgetpu(_dummy_model(tmp_path), timeout_s=0, check_model=False)
    float_model = tmp_path / "float.tflite"
    shutil.copy(fixtures / "classification" / "mobilenet_v1_0.25_224_float.tflite", float_model)
    with pytest.raises(ConversionError, match="8-bit"):
        compile_for_edgetpu(float_model)
    assert not fake_compiler.exists()                              # the compiler never ran

