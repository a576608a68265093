"""TFLite builtin operator names by code, read once from a data file generated from the TFLite schema.

The names live in ``tflite_builtin_ops.txt`` next to this module (package
data), written by ``tests/reliability/gen_tflite_ops.py`` from the schema's
``BuiltinOperator`` enum; a test checks it against the installed TensorFlow.
"""

from __future__ import annotations

import functools
from importlib import resources

from ..errors import ModelLoadError

__all__ = ["BUILTIN_OPS_FILE", "CUSTOM_CODE", "builtin_op_names", "builtin_op_name"]

#: The data file, in this package: comment lines start with "#", then one name per line in code order.
BUILTIN_OPS_FILE = "tflite_builtin_ops.txt"
#: BuiltinOperator code of CUSTOM (the op's name is then its custom_code string).
CUSTOM_CODE = 32


@functools.lru_cache(maxsize=1)
def builtin_op_names() -> tuple[str, ...]:
    """Every TFLite builtin operator name, index = BuiltinOperator code (read from the data file once).

    Raises:
        ModelLoadError: the data file is missing or unreadable (a broken install; reinstall edgecv).
    """
    try:
        text = resources.files(__package__).joinpath(BUILTIN_OPS_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"edgecv's TFLite operator table {BUILTIN_OPS_FILE} cannot be read ({exc}); "
                             "the installation is incomplete, reinstall edgecv") from exc
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def builtin_op_name(code: int) -> str:
    """Name of BuiltinOperator *code*, or ``BUILTIN_<code>`` for a code newer than the table.

    Raises:
        ModelLoadError: the data file is missing (see :func:`builtin_op_names`).
    """
    names = builtin_op_names()
    return names[code] if 0 <= code < len(names) else f"BUILTIN_{code}"
