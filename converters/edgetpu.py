"""Driving ``edgetpu_compiler`` and reading its log into a structured report.

The Edge TPU compiler (a closed-source x86-64 Linux binary) turns a full-int8
``.tflite`` into ``<name>_edgetpu.tflite``, in which the ops it could map sit
inside one ``edgetpu-custom-op`` and the rest stay ordinary TFLite ops for the
CPU. Its ``-s`` output is the only record of what was mapped and why not, so
:func:`parse_compiler_log` reads it (format as printed by compiler versions
2.x to 16.x, documented on coral.ai and in the google-coral/edgetpu issues):

    Edge TPU Compiler version 16.0.384591198
    Started a compilation timeout timer of 180 seconds.

    Model compiled successfully in 2270 ms.

    Input model: model.tflite
    Input size: 5.21MiB
    Output model: model_edgetpu.tflite
    Output size: 6.51MiB
    On-chip memory used for caching model parameters: 6.02MiB
    On-chip memory remaining for caching model parameters: 1.02MiB
    Off-chip memory used for streaming uncached model parameters: 0.00B
    Number of Edge TPU subgraphs: 1
    Total number of operations: 84
    Operation log: model_edgetpu.log

    Model successfully compiled but not all operations are supported by the Edge TPU. ...
    Number of operations that will run on Edge TPU: 83
    Number of operations that will run on CPU: 1

    Operator                       Count      Status

    CONV_2D                        35         Mapped to Edge TPU
    LOGISTIC                       1          More than one subgraph is not supported
    Compilation child process completed within timeout period.
    Compilation succeeded!

A compile where no operation reaches the Edge TPU is reported as a failure.
When the compiler is not installed, :func:`compile_for_edgetpu` returns a
result holding the exact command to run on an x86-64 Linux host and how to
install the compiler there.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from edgecv.errors import ConfigError, ConversionError, ModelLoadError

__all__ = [
    "COMPILER",
    "INSTALL_HINT",
    "OpMapping",
    "CompiledSegment",
    "CompilerLog",
    "EdgeTpuCompileResult",
    "find_compiler",
    "compiler_command",
    "parse_compiler_log",
    "parse_size_bytes",
    "compile_for_edgetpu",
]

COMPILER = "edgetpu_compiler"

INSTALL_HINT = (
    "edgetpu_compiler runs only on x86-64 Debian/Ubuntu Linux (there, or in a linux/amd64 Docker container):\n"
    "  curl https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -\n"
    '  echo "deb https://packages.cloud.google.com/apt coral-edgetpu-stable main" | '
    "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list\n"
    "  sudo apt-get update && sudo apt-get install edgetpu-compiler\n"
    "Elsewhere, use Coral's web compiler notebook (Google Colab: google-coral/tutorials compile_for_edgetpu.ipynb)."
)

_MAPPED = "Mapped to Edge TPU"
_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3}


@dataclass(frozen=True)
class OpMapping:
    """One row of the compiler's operator table: op type, how many, where they run and why."""

    op: str
    count: int
    status: str
    on_edgetpu: bool

    def to_dict(self) -> dict:
        return {"op": self.op, "count": self.count, "status": self.status, "on_edgetpu": self.on_edgetpu}


@dataclass(frozen=True)
class CompiledSegment:
    """What the compiler reported for one compiled model (one per segment with ``-n``)."""

    compile_time_ms: float | None
    input_model: str | None
    input_size_bytes: int | None
    output_model: str | None
    output_size_bytes: int | None
    on_chip_memory_used_bytes: int | None
    on_chip_memory_remaining_bytes: int | None
    off_chip_memory_used_bytes: int | None
    edgetpu_subgraphs: int | None
    total_ops: int | None
    ops_on_edgetpu: int | None
    ops_on_cpu: int | None
    operation_log: str | None
    operators: tuple[OpMapping, ...] = ()

    @property
    def nothing_mapped(self) -> bool:
        return self.edgetpu_subgraphs == 0 or self.ops_on_edgetpu == 0

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in (
            "compile_time_ms", "input_model", "input_size_bytes", "output_model", "output_size_bytes",
            "on_chip_memory_used_bytes", "on_chip_memory_remaining_bytes", "off_chip_memory_used_bytes",
            "edgetpu_subgraphs", "total_ops", "ops_on_edgetpu", "ops_on_cpu", "operation_log")}
        out["operators"] = [m.to_dict() for m in self.operators]
        return out


@dataclass(frozen=True)
class CompilerLog:
    """Everything :func:`parse_compiler_log` read from the compiler's output."""

    compiler_version: str | None
    compiled: bool                       # the compiler produced at least one model and did not end in failure
    segments: tuple[CompiledSegment, ...]
    errors: tuple[str, ...]              # "Compilation failed: ...", "ERROR: ...", "Internal compiler error ..."

    def to_dict(self) -> dict:
        return {"compiler_version": self.compiler_version, "compiled": self.compiled,
                "segments": [s.to_dict() for s in self.segments], "errors": list(self.errors)}


@dataclass(frozen=True)
class EdgeTpuCompileResult:
    """Outcome of :func:`compile_for_edgetpu`.

    ``ok`` is True only when the compiler ran, succeeded, wrote its output and
    mapped at least one operation to the Edge TPU. ``command_line`` is the
    shell-quoted command (with the final output folder) a user can rerun.
    """

    ok: bool
    compiler_found: bool
    command: tuple[str, ...]
    returncode: int | None = None
    output_models: tuple[str, ...] = ()
    log_files: tuple[str, ...] = ()
    log: CompilerLog | None = None
    failure: str | None = None
    install_hint: str | None = None
    elapsed_ms: float | None = None
    raw_output: str = ""

    @property
    def command_line(self) -> str:
        return " ".join(shlex.quote(a) for a in self.command)

    @property
    def output_model(self) -> str | None:
        return self.output_models[0] if self.output_models else None

    @property
    def ops_on_edgetpu(self) -> int | None:
        return _sum_field(self.log, "ops_on_edgetpu")

    @property
    def ops_on_cpu(self) -> int | None:
        return _sum_field(self.log, "ops_on_cpu")

    def to_dict(self) -> dict:
        return {
            "ok": self.ok, "compiler_found": self.compiler_found, "command": list(self.command),
            "command_line": self.command_line, "returncode": self.returncode,
            "output_models": list(self.output_models), "log_files": list(self.log_files),
            "log": None if self.log is None else self.log.to_dict(), "failure": self.failure,
            "install_hint": self.install_hint, "elapsed_ms": self.elapsed_ms,
            "ops_on_edgetpu": self.ops_on_edgetpu, "ops_on_cpu": self.ops_on_cpu,
        }

    def to_text(self) -> str:
        if not self.compiler_found:
            return f"edgetpu_compiler not found. On an x86-64 Linux host run:\n  {self.command_line}\n{self.install_hint}"
        lines = [("compiled for the Edge TPU: " + ", ".join(self.output_models)) if self.ok
                 else f"Edge TPU compile FAILED: {self.failure}"]
        for seg in self.log.segments if self.log is not None else ():
            lines.append(f"  {seg.output_model}: {seg.ops_on_edgetpu} of {seg.total_ops} ops on the Edge TPU, "
                         f"{seg.ops_on_cpu} on the CPU, {seg.edgetpu_subgraphs} Edge TPU subgraph(s), "
                         f"on-chip cache {_mib(seg.on_chip_memory_used_bytes)} used / "
                         f"{_mib(seg.on_chip_memory_remaining_bytes)} free, "
                         f"off-chip streaming {_mib(seg.off_chip_memory_used_bytes)}")
            for m in seg.operators:
                if not m.on_edgetpu:
                    lines.append(f"    CPU: {m.op} x{m.count}: {m.status}")
        return "\n".join(lines)

    def raise_for_failure(self) -> EdgeTpuCompileResult:
        """Return self when ok; else raise ConversionError with the cause and the fix."""
        if self.ok:
            return self
        if not self.compiler_found:
            raise ConversionError(f"edgetpu_compiler is not installed here; run `{self.command_line}` on an x86-64 "
                                  f"Linux host.\n{self.install_hint}")
        raise ConversionError(f"Edge TPU compile failed: {self.failure} (command: {self.command_line})")


def _sum_field(log: CompilerLog | None, name: str) -> int | None:
    if log is None or not log.segments:
        return None
    values = [getattr(s, name) for s in log.segments]
    return None if any(v is None for v in values) else sum(values)


def _mib(value: int | None) -> str:
    return "?" if value is None else f"{value / (1 << 20):.2f} MiB"


def parse_size_bytes(text: str) -> int | None:
    """``"6.02MiB"`` → 6312427, ``"0.00B"`` → 0; None when it is not a size."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)\s*", text)
    if match is None:
        return None
    return int(round(float(match.group(1)) * _UNITS[match.group(2)]))


_FIELD_PATTERNS = {
    "input_model": r"Input model:\s*(.+)",
    "input_size": r"Input size:\s*(.+)",
    "output_model": r"Output model:\s*(.+)",
    "output_size": r"Output size:\s*(.+)",
    "on_chip_used": r"On-chip memory used for caching model parameters:\s*(.+)",
    "on_chip_remaining": r"On-chip memory remaining for caching model parameters:\s*(.+)",
    "on_chip_available": r"On-chip memory available for caching model parameters:\s*(.+)",
    "off_chip_used": r"Off-chip memory used for streaming uncached model parameters:\s*(.+)",
    "subgraphs": r"Number of Edge TPU subgraphs:\s*(\d+)",
    "total_ops": r"Total number of operations:\s*(\d+)",
    "operation_log": r"Operation log:\s*(.+)",
    "ops_tpu": r"Number of operations that will run on Edge TPU:\s*(\d+)",
    "ops_cpu": r"Number of operations that will run on CPU:\s*(\d+)",
}
_COMPILED_RE = re.compile(r"Model compiled successfully in\s*([0-9.]+)\s*ms")
_OP_ROW_RE = re.compile(r"^(\S+)\s+(\d+)\s+(\S.*?)\s*$")
# lines that say why a compile failed, as the compiler prints them
_ERROR_RE = re.compile(r"^(ERROR:.*|Compilation failed:.*|Internal compiler error.*|Invalid model:.*|Model not quantized.*)$")


def _parse_segment(lines: list[str], compile_ms: float | None) -> CompiledSegment:
    found: dict[str, str] = {}
    operators: list[OpMapping] = []
    in_table = False
    for line in lines:
        text = line.strip()
        if re.match(r"^Operator\s+Count\s+Status$", text):
            in_table = True
            continue
        if in_table:
            row = _OP_ROW_RE.match(text)
            if row is not None:
                status = row.group(3)
                operators.append(OpMapping(op=row.group(1), count=int(row.group(2)), status=status,
                                           on_edgetpu=status == _MAPPED))
                continue
            if text:
                in_table = False      # the table ends at the first line that is not a row
        for key, pattern in _FIELD_PATTERNS.items():
            if key not in found:
                match = re.match(pattern, text)
                if match is not None:
                    found[key] = match.group(1).strip()

    def size(key: str) -> int | None:
        return parse_size_bytes(found[key]) if key in found else None

    def count(key: str) -> int | None:
        return int(found[key]) if key in found else None

    used, remaining = size("on_chip_used"), size("on_chip_remaining")
    if remaining is None and used is not None and size("on_chip_available") is not None:
        remaining = max(size("on_chip_available") - used, 0)   # compiler 2.0 printed the capacity instead
    subgraphs, total = count("subgraphs"), count("total_ops")
    on_tpu, on_cpu = count("ops_tpu"), count("ops_cpu")
    if on_tpu is None and operators:
        on_tpu = sum(m.count for m in operators if m.on_edgetpu)
        on_cpu = sum(m.count for m in operators if not m.on_edgetpu)
    elif on_tpu is None and total is not None and subgraphs is not None:
        # no per-op summary is printed when every op was mapped
        on_tpu, on_cpu = (total, 0) if subgraphs > 0 else (0, total)
    if on_cpu is None and on_tpu is not None and total is not None:
        on_cpu = total - on_tpu
    return CompiledSegment(
        compile_time_ms=compile_ms, input_model=found.get("input_model"), input_size_bytes=size("input_size"),
        output_model=found.get("output_model"), output_size_bytes=size("output_size"),
        on_chip_memory_used_bytes=used, on_chip_memory_remaining_bytes=remaining,
        off_chip_memory_used_bytes=size("off_chip_used"), edgetpu_subgraphs=subgraphs, total_ops=total,
        ops_on_edgetpu=on_tpu, ops_on_cpu=on_cpu, operation_log=found.get("operation_log"),
        operators=tuple(operators),
    )


def parse_compiler_log(text: str) -> CompilerLog:
    """Read ``edgetpu_compiler -s`` output (stdout and stderr together) into a CompilerLog.

    Pure function. One segment per "Model compiled successfully" block (several
    with ``-n``; with ``-d`` failed attempts come first and are not segments).

    Raises:
        ConfigError: *text* is not a string.
    """
    if not isinstance(text, str):
        raise ConfigError(f"compiler output must be text, got {type(text).__name__}")
    lines = text.replace("\r\n", "\n").split("\n")
    version = None
    for line in lines:
        match = re.match(r"\s*Edge TPU Compiler version\s+(\S+)", line)
        if match is not None:
            version = match.group(1)
            break
    starts = [(i, _COMPILED_RE.search(line)) for i, line in enumerate(lines)]
    starts = [(i, m) for i, m in starts if m is not None]
    segments = []
    for n, (i, match) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        segments.append(_parse_segment(lines[i + 1:end], float(match.group(1))))
    errors = tuple(line.strip() for line in lines if _ERROR_RE.match(line.strip()))
    verdicts = [line.strip() for line in lines if line.strip() in ("Compilation succeeded!", "Compilation failed!")]
    compiled = bool(segments) and (not verdicts or verdicts[-1] == "Compilation succeeded!")
    return CompilerLog(compiler_version=version, compiled=compiled, segments=tuple(segments), errors=errors)


def find_compiler() -> str | None:
    """Absolute path of ``edgetpu_compiler`` on PATH, or None."""
    return shutil.which(COMPILER)


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def compiler_command(model_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                     compiler: str = COMPILER, show_operations: bool = True,
                     num_segments: int | None = None, search_delegate: bool = False,
                     delegate_search_step: int | None = None, enable_multiple_subgraphs: bool = False,
                     min_runtime_version: int | None = None,
                     intermediate_tensors: Sequence[str] | None = None,
                     compiler_timeout_s: int | None = None) -> list[str]:
    """The ``edgetpu_compiler`` argument list (pure; nothing is run).

    Flags: ``-o out_dir``, ``-s`` (print the operator table), ``-n`` segments
    for pipelining, ``-d`` / ``-k`` search for the largest compilable
    delegate, ``-a`` multiple Edge TPU subgraphs (experimental), ``-m`` lowest
    runtime version, ``-i`` intermediate tensors as outputs, ``-t`` the
    compiler's own timeout in seconds.

    Raises:
        ConfigError: a count that is not a positive integer, a step without
            ``search_delegate``, or an empty tensor name.
    """
    for name, value in (("num_segments", num_segments), ("delegate_search_step", delegate_search_step),
                        ("min_runtime_version", min_runtime_version), ("compiler_timeout_s", compiler_timeout_s)):
        _positive(name, value)
    if delegate_search_step is not None and not search_delegate:
        raise ConfigError("delegate_search_step needs search_delegate=True (-k only applies with -d)")
    cmd = [compiler, "-o", os.path.abspath(os.fspath(out_dir))]
    if show_operations:
        cmd.append("-s")
    if enable_multiple_subgraphs:
        cmd.append("-a")
    if search_delegate:
        cmd.append("-d")
        if delegate_search_step is not None:
            cmd += ["-k", str(delegate_search_step)]
    if num_segments is not None:
        cmd += ["-n", str(num_segments)]
    if min_runtime_version is not None:
        cmd += ["-m", str(min_runtime_version)]
    if intermediate_tensors:
        names = list(intermediate_tensors)
        if any(not isinstance(n, str) or not n for n in names):
            raise ConfigError(f"intermediate_tensors must be non-empty tensor names, got {names!r}")
        cmd += ["-i", ",".join(names)]
    if compiler_timeout_s is not None:
        cmd += ["-t", str(compiler_timeout_s)]
    cmd.append(os.path.abspath(os.fspath(model_path)))
    return cmd


def _precheck(model_path: str) -> None:
    """Refuse inputs the compiler cannot take: dynamic tensors, already compiled, and float or other non-8-bit
    tensors in the int8 head. A float tail (ops after the last int8 ones, e.g. kept float by the fallback loop)
    is accepted: the compiler maps the ops before the first float one and leaves the rest to the CPU."""
    import targets

    report = targets.check(model_path, "coral-usb")
    head = _int8_head_tensors(model_path)
    blocking = [p for p in report.errors if p.code == "dynamic-shape" or (
        p.code in ("float-tensor", "unsupported-dtype") and (head is None or p.name is None or p.name in head))]
    if report.model.edgetpu_compiled:
        raise ConversionError(f"{model_path} is already compiled for the Edge TPU; compile the original int8 .tflite")
    if blocking:
        shown = "; ".join(p.message for p in blocking[:3])
        more = f" (and {len(blocking) - 3} more)" if len(blocking) > 3 else ""
        raise ConversionError(f"{model_path} cannot be compiled for the Edge TPU: {shown}{more}")


def _int8_head_tensors(model_path: str) -> set[str] | None:
    """Names of the tensors of the ops before the first float op (all of them when none is float), as
    ``delegate_info`` counts the Edge TPU's ops; None when the very first op is float (nothing would map)."""
    from .delegate_info import int8_counts

    ops = int8_counts(model_path)[4]
    first = next((i for i, (_, int8) in enumerate(ops) if not int8), len(ops))
    if first == 0:
        return None
    return {x.name for op, _ in ops[:first] for x in (*op.inputs, *op.outputs)}


def compile_for_edgetpu(model_path: str | os.PathLike[str],
                        out_dir: str | os.PathLike[str] | None = None, *,
                        num_segments: int | None = None, search_delegate: bool = False,
                        delegate_search_step: int | None = None, enable_multiple_subgraphs: bool = False,
                        min_runtime_version: int | None = None,
                        intermediate_tensors: Sequence[str] | None = None,
                        timeout_s: float = 600.0, compiler: str | None = None,
                        check_model: bool = True) -> EdgeTpuCompileResult:
    """Compile a full-int8 ``.tflite`` for the Edge TPU with ``edgetpu_compiler`` when it is installed.

    Runs the compiler (argument list, no shell, *timeout_s* wall-clock limit)
    in a temporary folder inside *out_dir*, checks its exit status, parses its
    ``-s`` output, then moves ``<name>_edgetpu.tflite`` and its ``.log`` into
    *out_dir* through ``edgecv.atomic`` (fsync, rename), so a failed compile leaves nothing behind.

    Args:
        model_path: the int8 ``.tflite`` to compile.
        out_dir: where the compiled model goes; default: the model's folder.
        num_segments: split into this many models for pipelining (``-n``).
        search_delegate: search for the largest compilable part (``-d``), step ``delegate_search_step`` (``-k``).
        enable_multiple_subgraphs: map ops after the first unsupported one too (``-a``, experimental).
        min_runtime_version: lowest Edge TPU runtime the model must run on (``-m``).
        intermediate_tensors: tensors to expose as outputs of the Edge TPU op (``-i``).
        timeout_s: seconds before the compiler process is killed.
        compiler: compiler executable; default ``edgetpu_compiler`` from PATH.
        check_model: refuse float / non-8-bit / dynamic-shape / already compiled models before running.

    Returns:
        An EdgeTpuCompileResult. Not ok (never raised) when the compiler is
        missing (``command`` and ``install_hint`` say what to run where), fails,
        times out, writes no model, or maps no operation to the Edge TPU.

    Raises:
        ModelLoadError: *model_path* is missing or not a readable TFLite model.
        ConfigError: bad option values, or *out_dir* is not a writable folder.
        ConversionError: with *check_model*, the model cannot be compiled at all.
    """
    path = os.path.abspath(os.fspath(model_path))
    if not os.path.isfile(path):
        raise ModelLoadError(f"model file {path} does not exist; check the path")
    if not path.endswith(".tflite"):
        raise ConfigError(f"edgetpu_compiler takes a .tflite model, got {path}; convert to full-int8 TFLite first")
    if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or timeout_s <= 0:
        raise ConfigError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    dest = os.path.abspath(os.fspath(out_dir)) if out_dir is not None else os.path.dirname(path)
    if not os.path.isdir(dest):
        raise ConfigError(f"output folder {dest} does not exist; create it first")
    options = dict(num_segments=num_segments, search_delegate=search_delegate,
                   delegate_search_step=delegate_search_step, enable_multiple_subgraphs=enable_multiple_subgraphs,
                   min_runtime_version=min_runtime_version, intermediate_tensors=intermediate_tensors)
    shown_command = tuple(compiler_command(path, dest, compiler=COMPILER if compiler is None else compiler, **options))
    if check_model:
        _precheck(path)
    exe = compiler if compiler is not None else find_compiler()
    if exe is None or (compiler is not None and shutil.which(compiler) is None and not os.path.isfile(compiler)):
        host = f"{platform.system()} {platform.machine()}"
        return EdgeTpuCompileResult(
            ok=False, compiler_found=False, command=shown_command,
            failure=f"{COMPILER} is not installed on this host ({host}); run the command on an x86-64 Linux host",
            install_hint=INSTALL_HINT)
    try:
        work = tempfile.mkdtemp(prefix=".edgetpu-", dir=dest)
    except OSError as exc:
        raise ConfigError(f"cannot write in output folder {dest}: {exc.strerror or exc}") from exc
    try:
        return _run(path, dest, work, exe, options, shown_command, timeout_s)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(path: str, dest: str, work: str, exe: str, options: dict, shown_command: tuple[str, ...],
         timeout_s: float) -> EdgeTpuCompileResult:
    cmd = compiler_command(path, work, compiler=exe, **options)
    base = EdgeTpuCompileResult(ok=False, compiler_found=True, command=shown_command)
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        output = _text(exc.stdout) + _text(exc.stderr)
        return replace(base, failure=f"{COMPILER} did not finish within {timeout_s:g} s and was stopped",
                       log=parse_compiler_log(output), raw_output=output,
                       elapsed_ms=(time.perf_counter() - started) * 1e3)
    except OSError as exc:
        return replace(base, compiler_found=False, install_hint=INSTALL_HINT,
                       failure=f"could not start {exe}: {exc.strerror or exc}")
    elapsed_ms = (time.perf_counter() - started) * 1e3
    output = (done.stdout or "") + (done.stderr or "")
    log = parse_compiler_log(output)
    base = replace(base, returncode=done.returncode, log=log, raw_output=output, elapsed_ms=elapsed_ms)
    failure = _failure(done.returncode, log)
    if failure is not None:
        return replace(base, failure=failure)
    produced = _produced_files(work, log)
    if not produced:
        return replace(base, failure=f"{COMPILER} reported success but wrote no *_edgetpu.tflite file")
    from edgecv.atomic import atomic_path

    models, logs = [], []
    for name in produced + sorted(f for f in os.listdir(work) if f.endswith("_edgetpu.log")):
        final = os.path.join(dest, name)
        with atomic_path(final) as staged:           # fsync + rename next to the destination
            os.replace(os.path.join(work, name), staged)
        (models if name.endswith(".tflite") else logs).append(final)
    return replace(base, ok=True, output_models=tuple(models), log_files=tuple(logs))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _failure(returncode: int, log: CompilerLog) -> str | None:
    if returncode != 0 or not log.compiled:
        reason = "; ".join(log.errors) if log.errors else "no reason printed (see raw_output)"
        return f"{COMPILER} exited with status {returncode}: {reason}"
    empty = [s for s in log.segments if s.nothing_mapped]
    if empty:
        reasons = sorted({m.status for s in empty for m in s.operators if not m.on_edgetpu})
        why = f" (compiler's reasons: {'; '.join(reasons)})" if reasons else ""
        return ("the compiler mapped no operation to the Edge TPU: the whole model would run on the CPU" + why +
                ". Check the model with `edgecv check MODEL --target coral-usb`")
    return None


def _produced_files(work: str, log: CompilerLog) -> list[str]:
    present = set(os.listdir(work))
    named = [os.path.basename(s.output_model) for s in log.segments if s.output_model]
    found = [n for n in named if n in present]
    return found or sorted(f for f in present if f.endswith("_edgetpu.tflite"))
