"""CLI: every sub-command's help has an example, bad arguments exit 2 with one line, errors exit 3."""

import json
import subprocess
import sys

import pytest

from edgecv.cli import COMMANDS, EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK, EXIT_USAGE, main

QUANT = "classification/mobilenet_v2_1.0_224_quant.tflite"
FLOAT = "classification/mobilenet_v1_0.25_224_float.tflite"


@pytest.mark.device
def test_version_and_help_via_console_entry():
    out = subprocess.run([sys.executable, "-m", "edgecv.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("edgecv ")
    out = subprocess.run([sys.executable, "-m", "edgecv.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout


@pytest.mark.device
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "example" in capsys.readouterr().out


@pytest.mark.device
def test_typo_in_command_suggests(capsys):
    with pytest.raises(SystemExit) as info:
        main(["chek", "x"])
    assert info.value.code == EXIT_USAGE
    assert "did you mean 'check'" in capsys.readouterr().err


@pytest.mark.device
def test_no_command_is_a_usage_error(capsys):
    assert main([]) == EXIT_USAGE


@pytest.mark.device
def test_targets_table_and_json(capsys):
    assert main(["targets"]) == EXIT_OK
    out = capsys.readouterr().out
    for name in ("cpu", "rpi4", "rpi5", "jetson-nano", "jetson-orin", "coral-usb", "coral-devboard"):
        assert name in out
    assert main(["targets", "coral-usb", "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "coral-usb" and data["delegate"] == "edgetpu"


@pytest.mark.device
def test_unknown_target_one_line_with_suggestion(capsys):
    assert main(["targets", "rpi-4"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'rpi4'" in err[0]


@pytest.mark.device
def test_check_exit_codes_and_json(fixtures, capsys):
    assert main(["check", str(fixtures / FLOAT), "--target", "coral-usb"]) == EXIT_NEGATIVE
    assert "float" in capsys.readouterr().out
    assert main(["check", str(fixtures / FLOAT), "--target", "cpu", "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["target"] == "cpu"
    assert main(["check", str(fixtures / QUANT), "--target", "coral-usb", "--target", "rpi4", "--json"]) in (
        EXIT_OK, EXIT_NEGATIVE)
    both = json.loads(capsys.readouterr().out)
    assert [r["target"] for r in both] == ["coral-usb", "rpi4"]
    assert not any(p["code"] == "float-tensor" for p in both[0]["problems"])


@pytest.mark.device
def test_check_missing_model_is_edgecv_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "none.tflite"), "--target", "cpu"]) == EXIT_ERROR
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.device
def test_doctor_never_fails(capsys):
    assert main(["doctor", "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert "runtimes" in data
