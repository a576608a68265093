"""Loading the built-in target profiles (targets/profiles/*.json) and looking them up by name."""

from __future__ import annotations

import json
import os
import threading

from edgecv.errors import ConfigError, UnknownTargetError, did_you_mean

from .target import Target

__all__ = ["get", "all_targets", "names", "resolve", "load_profile", "PROFILES_DIR"]

PROFILES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")

_lock = threading.Lock()
_cache: dict[str, Target] | None = None


def load_profile(path: str | os.PathLike[str]) -> Target:
    """Read one target profile from a JSON file.

    Raises:
        ConfigError: the file is unreadable, not JSON, or not a valid profile.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read target profile {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"target profile {path} is not valid JSON: {exc}") from exc
    return Target.from_dict(data, source=f"target profile {path}")


def _load_builtin() -> dict[str, Target]:
    global _cache
    with _lock:
        if _cache is None:
            found: dict[str, Target] = {}
            for entry in sorted(os.listdir(PROFILES_DIR)):
                if not entry.endswith(".json"):
                    continue
                target = load_profile(os.path.join(PROFILES_DIR, entry))
                if target.name != entry[: -len(".json")]:
                    raise ConfigError(f"target profile {entry} is named '{target.name}'; file and name must agree")
                found[target.name] = target
            _cache = found
        return _cache


def names() -> list[str]:
    """Names of the built-in targets, sorted."""
    return sorted(_load_builtin())


def all_targets() -> list[Target]:
    """Every built-in target, sorted by name."""
    profiles = _load_builtin()
    return [profiles[n] for n in sorted(profiles)]


def get(name: str) -> Target:
    """The built-in target called exactly *name* (no case folding or other auto-correction).

    Raises:
        UnknownTargetError: no such target; the message lists close matches and all names.
    """
    if not isinstance(name, str):
        raise UnknownTargetError(f"a target name must be a string, got {type(name).__name__}; known: {', '.join(names())}")
    profiles = _load_builtin()
    if name in profiles:
        return profiles[name]
    hint = did_you_mean(name.strip().lower().replace("_", "-"), profiles)
    raise UnknownTargetError(f"unknown target '{name}'{hint}; known targets: {', '.join(sorted(profiles))}")


def resolve(target: str | Target) -> Target:
    """Accept a Target or a target name.

    Raises:
        UnknownTargetError: unknown name.
        ConfigError: neither a str nor a Target.
    """
    if isinstance(target, Target):
        return target
    if isinstance(target, str):
        return get(target)
    raise ConfigError(f"target must be a target name or a targets.Target, got {type(target).__name__}")
