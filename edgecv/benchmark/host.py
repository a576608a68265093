"""Host fingerprint for benchmark reports: what machine the figures were measured on.

Board model, CPU model, cpufreq governor and temperature come from
``targets.detect()`` (the same reading ``edgecv doctor`` shows, without its
child-process runtime probes); this module adds what a benchmark also needs:
usable cores, memory, OS release, kernel, Python and numpy versions, and
whether this host is the target a model was loaded for. A fact that cannot
be read is None, never guessed.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HostInfo", "read_host", "read_temperature_c", "target_mismatches", "normalize_arch"]

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armv8l": "aarch64",
                 "armv7l": "armv7", "armhf": "armv7"}


@dataclass(frozen=True)
class HostInfo:
    """The machine a benchmark ran on.

    Attributes:
        cpu_model: as /proc/cpuinfo names it, e.g. "AMD EPYC" (None when unreadable).
        logical_cores: ``os.cpu_count()``.
        usable_cores: cores this process may run on (CPU affinity), None where unknown.
        arch: normalised machine architecture ("x86_64", "aarch64", "armv7").
        memory_bytes: physical memory.
        os: "Linux", "Darwin", "Windows"; ``os_release`` the distribution's name.
        kernel: kernel release.
        python: implementation and version, e.g. "CPython 3.11.2".
        numpy: numpy version.
        board_model: device-tree model ("Raspberry Pi 4 Model B Rev 1.4"), None elsewhere.
        cpu_governor: cpufreq governor of cpu0 ("performance", "ondemand", ...).
        temperature_c: CPU temperature in degrees Celsius when the run started.
    """

    cpu_model: str | None
    logical_cores: int | None
    usable_cores: int | None
    arch: str
    memory_bytes: int | None
    os: str
    os_release: str | None
    kernel: str
    python: str
    numpy: str
    board_model: str | None
    cpu_governor: str | None
    temperature_c: float | None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def normalize_arch(arch: str) -> str:
    """Canonical architecture name: amd64 -> x86_64, arm64 -> aarch64, armv7l -> armv7."""
    key = arch.strip().lower()
    return _ARCH_ALIASES.get(key, key)


def _memory_bytes() -> int | None:
    text = _read_text("/proc/meminfo")
    if text:
        match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
        if match:
            return int(match.group(1)) * 1024
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _os_release() -> str | None:
    text = _read_text("/etc/os-release")
    if text:
        match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.MULTILINE)
        if match:
            return match.group(1)
    if platform.system() == "Darwin":
        return f"macOS {platform.mac_ver()[0]}"
    return None


def _usable_cores() -> int | None:
    getter = getattr(os, "sched_getaffinity", None)
    if getter is None:
        return None
    try:
        return len(getter(0))
    except OSError:
        return None


def _detect() -> Any:
    import targets

    return targets.detect(probe_imports=False)


def read_temperature_c() -> float | None:
    """CPU temperature in degrees Celsius, as ``targets.detect()`` reads it (None where unreadable)."""
    return _detect().cpu_temperature_c


def read_host() -> HostInfo:
    """Fingerprint this machine (a few small file reads; tens of milliseconds)."""
    found = _detect()
    return HostInfo(
        cpu_model=found.cpu_model,
        logical_cores=os.cpu_count(),
        usable_cores=_usable_cores(),
        arch=normalize_arch(platform.machine() or "unknown"),
        memory_bytes=_memory_bytes(),
        os=platform.system() or "unknown",
        os_release=_os_release(),
        kernel=platform.release(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        numpy=np.__version__,
        board_model=found.board_model,
        cpu_governor=found.cpu_governor,
        temperature_c=found.cpu_temperature_c,
    )


def target_mismatches(host: HostInfo, target: Any, *, model_format: str, accelerators: tuple[str, ...]) -> list[str]:
    """Why this host (with what the runtime granted) is not the *target*; empty when it matches.

    Checks the architecture (unless the target says "any"), the board model
    against the target's ``host_match`` substrings (when it lists any and the
    board is readable; an unreadable board is a mismatch), the Edge TPU
    delegate, and the target's first ONNX Runtime provider for ONNX models.
    """
    reasons: list[str] = []
    arch = getattr(target, "arch", None)
    if arch and arch != "any" and normalize_arch(arch) != host.arch:
        reasons.append(f"host CPU is {host.arch}, target {target.name} is {normalize_arch(arch)}")
    host_match = tuple(getattr(target, "host_match", ()) or ())
    if host_match:
        if host.board_model is None:
            reasons.append(f"board model unreadable; target {target.name} is a {' / '.join(host_match)}")
        elif not any(m.lower() in host.board_model.lower() for m in host_match):
            reasons.append(f"board is {host.board_model!r}, target {target.name} is a {' / '.join(host_match)}")
    if getattr(target, "delegate", None) == "edgetpu" and "edgetpu" not in accelerators:
        reasons.append("the Edge TPU delegate is not in use; figures are CPU figures")
    providers = tuple(getattr(target, "onnx_providers", ()) or ())
    if model_format == "onnx" and providers and providers[0] not in accelerators:
        reasons.append(f"{providers[0]} was not granted (running on {', '.join(accelerators) or 'nothing'})")
    return reasons
