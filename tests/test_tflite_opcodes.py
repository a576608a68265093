"""TFLite builtin operator names: a data file generated from the schema, shipped as package data."""

from __future__ import annotations

import pytest

from edgecv.formats import tflite
from edgecv.formats.tflite_opcodes import BUILTIN_OPS_FILE, CUSTOM_CODE, builtin_op_name, builtin_op_names
from tests.conftest import REPO


@pytest.mark.device
def test_operator_table_loads_from_package_data():
    names = builtin_op_names()
    assert names[0] == "ADD"
    assert names[CUSTOM_CODE] == "CUSTOM"
    assert names.index("DEPTHWISE_CONV_2D") == 4
    assert len(set(names)) == len(names)
    assert all(n.replace("_", "").isalnum() and n.upper() == n for n in names)
    assert builtin_op_names() is names   # read once, cached
    assert tflite.BUILTIN_OP_NAMES == names   # the old module attribute still answers


@pytest.mark.device
def test_codes_beyond_the_table_keep_a_readable_name():
    count = len(builtin_op_names())
    assert builtin_op_name(count) == f"BUILTIN_{count}"
    assert builtin_op_name(-3) == "BUILTIN_-3"
    assert builtin_op_name(CUSTOM_CODE) == "CUSTOM"


def test_operator_table_matches_the_installed_tensorflow_schema():
    schema = pytest.importorskip("tensorflow.lite.python.schema_py_generated")
    from tests.reliability.gen_tflite_ops import builtin_operator_names

    assert builtin_op_names() == tuple(builtin_operator_names(schema)), (
        f"{BUILTIN_OPS_FILE} is out of date with the installed TensorFlow; regenerate it with "
        "python -m tests.reliability.gen_tflite_ops > edgecv/formats/tflite_builtin_ops.txt")


def test_operator_table_is_declared_package_data():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert BUILTIN_OPS_FILE in config["tool"]["setuptools"]["package-data"]["edgecv.formats"]
