"""`import edgecv` must stay lean: the standard library only; numpy and the rest load with the first name used."""

import json
import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "onnxruntime", "cv2", "ai_edge_litert", "tflite_runtime", "onnx", "keras",
         "converters", "matplotlib")


def _loaded_after(code: str) -> dict:
    """Run *code* in a fresh interpreter; which modules were loaded then (heavy ones, edgecv's, numpy)."""
    report = (f"\nimport json, sys\nprint(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules], "
              "'edgecv': sorted(m for m in sys.modules if m.startswith('edgecv')), "
              "'numpy': 'numpy' in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.device
def test_import_edgecv_loads_the_standard_library_only():
    """Public names are loaded on first access (edgecv/__init__.py's table): the bare import loads no numpy,
    no heavy module and no other edgecv module; the first task loads numpy but still no heavy module."""
    bare = _loaded_after("import edgecv")
    assert bare == {"heavy": [], "edgecv": ["edgecv", "edgecv._version"], "numpy": False}
    first_task = _loaded_after("import edgecv\nedgecv.Detector")
    assert first_task["heavy"] == [] and first_task["numpy"]


@pytest.mark.device
def test_public_api_names_resolve():
    import edgecv

    for name in edgecv.__all__:
        assert hasattr(edgecv, name), name


@pytest.mark.device
def test_cli_help_loads_no_heavy_module():
    """Every command module is imported to build the parser; none of them may pull in TF, converters or a runtime."""
    loaded = _loaded_after("from edgecv.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert loaded["heavy"] == []
