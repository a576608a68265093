"""Operator lists stored as data (targets/data/*.txt): what the Edge TPU and XNNPACK run.

Each file lists one TFLite builtin operator per line, ``NAME | column | note``,
with ``#`` comment lines naming the source document.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from edgecv.errors import ConfigError

__all__ = ["edgetpu_ops", "xnnpack_fp32_ops", "xnnpack_int8_ops", "load_op_list", "DATA_DIR"]

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@functools.cache
def load_op_list(filename: str) -> Mapping[str, str]:
    """Op name → note (the last column, may be empty) from a data file.

    Raises:
        ConfigError: the file is missing or a line is malformed.
    """
    path = os.path.join(DATA_DIR, filename)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"operator list {path} is missing: {exc.strerror or exc}; reinstall edgecv") from exc
    ops: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = [p.strip() for p in text.split("|")]
        name = parts[0]
        if not name or not name.replace("_", "").isalnum() or name.upper() != name:
            raise ConfigError(f"{path}:{number}: '{name}' is not a TFLite builtin operator name")
        ops[name] = parts[-1] if len(parts) > 1 else ""
    return ops


def edgetpu_ops() -> Mapping[str, str]:
    """TFLite builtin ops the Edge TPU compiler can map (coral.ai supported-operations table)."""
    return load_op_list("edgetpu_ops.txt")


def xnnpack_fp32_ops() -> Mapping[str, str]:
    """TFLite builtin ops XNNPACK delegates in float models (TFLite XNNPACK README)."""
    return load_op_list("xnnpack_fp32_ops.txt")


def xnnpack_int8_ops() -> Mapping[str, str]:
    """TFLite builtin ops XNNPACK delegates in 8-bit quantized models (TFLite XNNPACK README)."""
    return load_op_list("xnnpack_int8_ops.txt")
