"""`import edgecv` must stay lean: the standard library only; numpy and the rest load with the first name used."""

import json
import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "onnxruntime", "cv2", "ai_edge_litert", "tflite_runtime", "onnx", "keras",
         "converters", "matplotlib")


@pytest.mark.device
def test_import_edgecv_loads_no_heavy_module():
    code = ("import sys, json, edgecv; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.device
def test_import_edgecv_loads_the_standard_library_only():
    """Public names are loaded on first access (edgecv/__init__.py's table): the bare import loads no numpy
    and no other edgecv module; the first task loads numpy but still no heavy module."""
    code = ("import sys, json, edgecv; before = sorted(m for m in sys.modules if m.startswith('edgecv') "
            "or m == 'numpy'); edgecv.Detector; "
            f"print(json.dumps([before, [m for m in {HEAVY!r} if m in sys.modules], 'numpy' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, heavy, numpy_loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == ["edgecv", "edgecv._version"] and heavy == [] and numpy_loaded


@pytest.mark.device
def test_public_api_names_resolve():
    import edgecv

    for name in edgecv.__all__:
        assert hasattr(edgecv, name), name


@pytest.mark.device
def test_cli_help_loads_no_heavy_module():
    """Every command module is imported to build the parser; none of them may pull in TF, converters or a runtime."""
    code = ("import sys, json\nfrom edgecv.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
