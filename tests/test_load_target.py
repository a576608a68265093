"""edgecv.load(..., target=NAME) applies the target's runtime settings and reports fallbacks."""

import pytest

import edgecv

QUANT = "classification/mobilenet_v2_1.0_224_quant.tflite"
ULTRAFACE = "detection/ultraface_rfb_320.onnx"


@pytest.mark.device
def test_jetson_asks_for_tensorrt_then_cuda_and_says_what_it_got(fixtures, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECV_CACHE_DIR", str(tmp_path))
    with edgecv.load(fixtures / ULTRAFACE, target="jetson-orin") as m:
        assert m.target.name == "jetson-orin"
        assert m.accelerators[-1] == "CPUExecutionProvider"
        if "TensorrtExecutionProvider" not in m.accelerators:  # no GPU here: the fallback is reported
            assert any("TensorrtExecutionProvider" in w for w in m.warnings)
        assert m.invoke()[0].shape == (1, 4420, 2)


@pytest.mark.device
def test_coral_without_edgetpu_runs_int8_on_cpu_with_a_warning(fixtures):
    with edgecv.load(fixtures / QUANT, target="coral-usb") as m:
        if "edgetpu" not in m.accelerators:
            assert m.accelerators == ("cpu",)
            assert any("Edge TPU delegate" in w for w in m.warnings)
        m.invoke()


@pytest.mark.device
def test_format_the_target_does_not_run(fixtures):
    with pytest.raises(edgecv.IncompatibleModelError, match="convert"):
        edgecv.load(fixtures / QUANT, target="jetson-orin")


@pytest.mark.device
def test_unknown_target(fixtures):
    with pytest.raises(edgecv.UnknownTargetError, match="did you mean 'rpi4'"):
        edgecv.load(fixtures / QUANT, target="rpi-4")


@pytest.mark.device
def test_rpi_target_uses_its_threads(fixtures):
    with edgecv.load(fixtures / QUANT, target="rpi4") as m:
        assert m.target.default_threads == 4
        assert m.backend == "litert"
