"""``targets.detect``: what this host is and can run (the ``edgecv doctor`` report). Never raises.

Reads the board model, CPU, governor and temperature from /proc and /sys;
finds the runtimes with ``importlib`` metadata and probes each in a child
Python process (a broken native wheel cannot crash the caller, and nothing
heavy stays imported); looks for Edge TPU devices (USB ids 1a6e:089a before
firmware load and 18d1:9302 after, PCIe /dev/apex_*) and libedgetpu.so.1; and
picks the target profile that best matches.
"""

from __future__ import annotations

import ctypes.util
import glob
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from .registry import all_targets

__all__ = ["detect", "HostReport", "RuntimeInfo", "EdgeTpuInfo", "EDGETPU_USB_IDS"]

#: (vendor, product) of the Coral USB Accelerator: before its firmware is loaded, and after.
EDGETPU_USB_IDS = (("1a6e", "089a"), ("18d1", "9302"))

_LIBEDGETPU_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libedgetpu.so.1",
    "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1",
    "/usr/lib/arm-linux-gnueabihf/libedgetpu.so.1",
    "/usr/lib/libedgetpu.so.1",
    "/usr/local/lib/libedgetpu.so.1",
    "/opt/homebrew/lib/libedgetpu.1.dylib",
    "/usr/local/lib/libedgetpu.1.dylib",
)

_PROBE_TIMEOUT_S = 60.0

T = TypeVar("T")


@dataclass(frozen=True)
class RuntimeInfo:
    """One inference runtime (or TensorFlow) on this host.

    ``installed``: a distribution is installed; ``importable``: a child Python
    imported it (None when not tried); ``problem``: why it cannot be used.
    """

    name: str
    module: str
    distribution: str | None
    version: str | None
    installed: bool
    importable: bool | None
    details: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "module": self.module, "distribution": self.distribution,
                "version": self.version, "installed": self.installed, "importable": self.importable,
                "details": dict(self.details), "problem": self.problem}


@dataclass(frozen=True)
class EdgeTpuInfo:
    usb_devices: tuple[str, ...]      # "1a6e:089a at 2-1" style entries
    pcie_devices: tuple[str, ...]     # /dev/apex_0 ...
    libedgetpu: str | None         # where libedgetpu.so.1 was found

    @property
    def present(self) -> bool:
        return bool(self.usb_devices or self.pcie_devices)

    def to_dict(self) -> dict:
        return {"usb_devices": list(self.usb_devices), "pcie_devices": list(self.pcie_devices),
                "libedgetpu": self.libedgetpu, "present": self.present}


@dataclass(frozen=True)
class HostReport:
    """What ``edgecv doctor`` prints: host facts, runtimes, accelerators and the best-matching target."""

    system: str
    machine: str
    python: str
    board_model: str | None
    cpu_model: str | None
    cpu_count: int | None
    cpu_governor: str | None
    cpu_temperature_c: float | None
    numpy_version: str | None
    runtimes: tuple[RuntimeInfo, ...]
    edgetpu: EdgeTpuInfo
    tensorrt_library: str | None
    matched_target: str
    match_reason: str
    notes: tuple[str, ...] = ()

    def runtime(self, name: str) -> RuntimeInfo | None:
        return next((r for r in self.runtimes if r.name == name), None)

    def to_dict(self) -> dict:
        return {
            "system": self.system, "machine": self.machine, "python": self.python,
            "board_model": self.board_model, "cpu_model": self.cpu_model, "cpu_count": self.cpu_count,
            "cpu_governor": self.cpu_governor, "cpu_temperature_c": self.cpu_temperature_c,
            "numpy_version": self.numpy_version, "runtimes": [r.to_dict() for r in self.runtimes],
            "edgetpu": self.edgetpu.to_dict(), "tensorrt_library": self.tensorrt_library,
            "matched_target": self.matched_target, "match_reason": self.match_reason, "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_text(self) -> str:
        def show(value: Any) -> str:
            return "unknown" if value is None else str(value)

        temp = None if self.cpu_temperature_c is None else f"{self.cpu_temperature_c:.1f} C"
        lines = [
            f"host: {self.system} {self.machine}, Python {self.python}",
            f"board: {show(self.board_model)}",
            f"cpu: {show(self.cpu_model)} x{show(self.cpu_count)}, governor {show(self.cpu_governor)}, "
            f"temperature {show(temp)}",
            f"numpy: {show(self.numpy_version)}",
            "runtimes:",
        ]
        for r in self.runtimes:
            if not r.installed:
                state = "not installed"
            elif r.importable is False:
                state = f"{r.version} installed but NOT importable"
            else:
                state = f"{r.version} ok" if r.importable else f"{r.version} installed"
            extra = f" providers: {', '.join(r.details['providers'])}" if r.details.get("providers") else ""
            lines.append(f"  {r.name}: {state}{extra}")
            if r.problem:
                lines.append(f"    ! {r.problem}")
        tpu = self.edgetpu
        devices = ", ".join(tpu.usb_devices + tpu.pcie_devices) or "none found"
        lines.append(f"edge tpu: {devices}; libedgetpu: {show(tpu.libedgetpu) if tpu.libedgetpu else 'not found'}")
        lines.append(f"tensorrt: {self.tensorrt_library or 'libnvinfer not found'}")
        lines.append(f"best target: {self.matched_target} ({self.match_reason})")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _safe(notes: list[str], what: str, fn: Callable[[], T], default: T) -> T:
    try:
        return fn()
    except Exception as exc:  # the doctor must never fail: record and go on
        notes.append(f"could not read {what}: {type(exc).__name__}: {exc}")
        return default


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            raw = f.read(4096)
    except OSError:
        return None
    text = raw.replace(b"\x00", b"").decode("utf-8", errors="replace").strip()
    return text or None


def _cpu_model(root: str = "/") -> str | None:
    text = _read_text_all(_at(root, "/proc/cpuinfo"))
    if text:
        for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
            for line in text.splitlines():
                if line.split(":")[0].strip() == key and ":" in line:
                    value = line.split(":", 1)[1].strip()
                    if value:
                        return value
    return platform.processor() or None


def _read_text_all(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _cpu_temperature_c(root: str = "/") -> float | None:
    """The CPU's zone if one is labelled so (cpu, soc, x86_pkg_temp), else the hottest zone, °C."""
    readings: list[tuple[str, float]] = []
    for zone in sorted(glob.glob(os.path.join(_at(root, "/sys/class/thermal"), "thermal_zone*"))):
        raw = _read_text(os.path.join(zone, "temp"))
        if raw is None:
            continue
        try:
            milli = float(raw)
        except ValueError:
            continue
        readings.append(((_read_text(os.path.join(zone, "type")) or "").lower(), milli / 1000.0))
    if not readings:
        return None
    for kind, value in readings:
        if any(k in kind for k in ("cpu", "soc", "x86_pkg_temp")):
            return round(value, 1)
    return round(max(v for _, v in readings), 1)


def _edgetpu(root: str = "/") -> EdgeTpuInfo:
    usb = []
    for device in sorted(glob.glob(os.path.join(_at(root, "/sys/bus/usb/devices"), "*"))):
        vendor = (_read_text(os.path.join(device, "idVendor")) or "").lower()
        product = (_read_text(os.path.join(device, "idProduct")) or "").lower()
        if (vendor, product) in EDGETPU_USB_IDS:
            usb.append(f"{vendor}:{product} at {os.path.basename(device)}")
    pcie = sorted("/dev/" + os.path.basename(p) for p in glob.glob(os.path.join(_at(root, "/dev"), "apex_*")))
    known = tuple(_at(root, p) for p in _LIBEDGETPU_PATHS)
    return EdgeTpuInfo(usb_devices=tuple(usb), pcie_devices=tuple(pcie),
                       libedgetpu=_find_library("edgetpu", known, search_system=root == "/"))


def _at(root: str, path: str) -> str:
    """*path* (absolute, on a real host) under *root* (a fake filesystem tree in tests)."""
    return path if root == "/" else os.path.join(root, path.lstrip("/"))


def _find_library(name: str, known: tuple[str, ...] = (), *, search_system: bool = True) -> str | None:
    for path in known:
        if os.path.exists(path):
            return path
    if not search_system:
        return None
    try:
        return ctypes.util.find_library(name)
    except Exception:
        return None


def _numpy_requirement(dist: str | None) -> str | None:
    """The numpy requirement a distribution declares (e.g. "numpy>=1.23.2"), or None."""
    if dist is None:
        return None
    from importlib import metadata

    try:
        requires = metadata.requires(dist) or []
    except Exception:
        return None
    return next((r.split(";")[0].strip() for r in requires if r.replace("_", "-").lower().startswith("numpy")), None)


def _dist_version(*dists: str) -> tuple[str | None, str | None]:
    from importlib import metadata

    for dist in dists:
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        except Exception:
            continue
    return None, None


_PROBES = {
    "ai_edge_litert": "import ai_edge_litert.interpreter as m; print(json.dumps({}))",
    "tflite_runtime": "import tflite_runtime.interpreter as m; print(json.dumps({}))",
    "onnxruntime": "import onnxruntime as m; print(json.dumps({'providers': m.get_available_providers(), "
                   "'device': m.get_device()}))",
}


def _probe(module: str) -> tuple[bool, dict[str, Any], str | None]:
    """Import *module* in a child Python; (importable, details, error text)."""
    code = "import json\n" + _PROBES[module]
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=_PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return False, {}, f"importing {module} took longer than {_PROBE_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return False, {}, f"could not start a Python child to import {module}: {exc}"
    if done.returncode != 0:
        tail = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        return False, {}, tail[-1] if tail else f"import exited with status {done.returncode}"
    try:
        lines = done.stdout.strip().splitlines()
        return True, json.loads(lines[-1]) if lines else {}, None
    except (ValueError, IndexError):
        return True, {}, None


def _major(version: str | None) -> int | None:
    if not version:
        return None
    head = version.split(".")[0]
    return int(head) if head.isdigit() else None


def _runtimes(numpy_version: str | None, probe: bool) -> tuple[RuntimeInfo, ...]:
    import importlib.util

    specs = (
        ("ai-edge-litert", "ai_edge_litert", ("ai-edge-litert", "ai-edge-litert-nightly")),
        ("tflite-runtime", "tflite_runtime", ("tflite-runtime", "tflite-runtime-nightly")),
        ("onnxruntime", "onnxruntime", ("onnxruntime-gpu", "onnxruntime", "onnxruntime-directml",
                                        "onnxruntime-openvino")),
        ("tensorflow", "tensorflow", ("tensorflow", "tensorflow-cpu", "tensorflow-aarch64", "tf-nightly")),
    )
    out = []
    for name, module, dists in specs:
        found = importlib.util.find_spec(module) is not None
        dist, version = _dist_version(*dists)
        problem = None
        importable: bool | None = None
        details: dict[str, Any] = {}
        if name in ("ai-edge-litert", "tflite-runtime") and found:
            details["numpy_requirement"] = _numpy_requirement(dist)
        if name == "tflite-runtime" and found and _major(numpy_version) is not None and _major(numpy_version) >= 2:
            # every tflite-runtime wheel (last release 2.14) was built against the NumPy 1.x C ABI
            problem = (f"tflite-runtime {version} was built against NumPy 1.x but numpy {numpy_version} is "
                       "installed, so the import fails; run pip install 'numpy<2' (or use ai-edge-litert)")
            importable = False
        elif found and probe and module in _PROBES:
            importable, probed, error = _probe(module)
            details.update(probed)
            if not importable:
                problem = f"import failed: {error}"
        elif name == "tensorflow" and found:
            details = {"note": "not imported (slow); only its presence is reported"}
        out.append(RuntimeInfo(name=name, module=module, distribution=dist, version=version,
                               installed=found, importable=importable, details=details, problem=problem))
    return tuple(out)


def _match(board: str | None, edgetpu: EdgeTpuInfo) -> tuple[str, str]:
    best: tuple[int, str, str] | None = None
    if board:
        lowered = board.lower()
        for t in all_targets():
            for needle in t.host_match:
                if needle.lower() in lowered and (best is None or len(needle) > best[0]):
                    best = (len(needle), t.name, f"board model '{board}' contains '{needle}'")
    if best is not None:
        return best[1], best[2]
    if edgetpu.usb_devices:
        return "coral-usb", "a Coral USB Accelerator is plugged in"
    if edgetpu.pcie_devices:
        return "coral-devboard", "an Edge TPU is on PCIe (/dev/apex_*)"
    return "cpu", "no known board or accelerator found"


def detect(*, probe_imports: bool = True, root: str = "/") -> HostReport:
    """Describe this host for ``edgecv doctor``. Never raises.

    Args:
        probe_imports: import each installed runtime in a child Python to prove
            it loads (and to list ONNX Runtime's providers); False only looks
            at what is installed.
        root: where the host's /proc, /sys and /dev are; tests point it at a
            fake tree (then no system-wide library search is made either).
    """
    notes: list[str] = []
    board = _safe(notes, "/proc/device-tree/model", lambda: _read_text(_at(root, "/proc/device-tree/model")), None)
    numpy_version = _safe(notes, "numpy version", lambda: _dist_version("numpy")[1], None)
    edgetpu = _safe(notes, "Edge TPU devices", lambda: _edgetpu(root), EdgeTpuInfo((), (), None))
    runtimes = _safe(notes, "runtimes", lambda: _runtimes(numpy_version, probe_imports), ())
    matched, reason = _safe(notes, "target match", lambda: _match(board, edgetpu), ("cpu", "matching failed"))
    if edgetpu.present and edgetpu.libedgetpu is None:
        notes.append("an Edge TPU is attached but libedgetpu.so.1 is missing: apt-get install libedgetpu1-std")
    if not any(r.installed for r in runtimes if r.name != "tensorflow"):
        notes.append("no inference runtime installed: pip install 'edgecv[litert]' or 'edgecv[onnx]'")
    governor = _safe(notes, "CPU governor",
                     lambda: _read_text(_at(root, "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")), None)
    if governor is not None and governor not in ("performance",):
        notes.append(f"CPU governor is '{governor}': benchmarks vary with clock scaling; for stable timings "
                     "set it to 'performance'")
    return HostReport(
        system=platform.system(), machine=platform.machine(), python=platform.python_version(),
        board_model=board, cpu_model=_safe(notes, "CPU model", lambda: _cpu_model(root), None),
        cpu_count=os.cpu_count(), cpu_governor=governor,
        cpu_temperature_c=_safe(notes, "CPU temperature", lambda: _cpu_temperature_c(root), None),
        numpy_version=numpy_version, runtimes=runtimes, edgetpu=edgetpu,
        tensorrt_library=_safe(notes, "TensorRT library",
                               lambda: _find_library("nvinfer", search_system=root == "/"), None),
        matched_target=matched, match_reason=reason, notes=tuple(notes),
    )
