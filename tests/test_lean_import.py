"""`import edgecv` must stay lean: numpy and the standard library only."""

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
