# Two set-up commands: `make demo` and `make test`. Each creates what it needs.
PYTHON ?= python3
VENV := .venv
DEVICE_VENV := .venv-device
ONNX2TF_VENV := .venv-onnx2tf
# onnx2tf needs Python >= 3.12: the first python3.12 that runs (pyenv's shim may not), or say PYTHON312=...
PYTHON312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12; do \
	"$$p" -c "" >/dev/null 2>&1 && { echo "$$p"; break; }; done)
PIP_FLAGS ?= --disable-pip-version-check --quiet

.PHONY: demo test test-full test-device test-arm64 test-arm64-smoke clean-arm64 lint clean onnx2tf

# Full workstation environment: converters, both runtimes, plotting, test tools.
$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -e '.[all,dev]'
	touch $@

# Lean "device" environment, like a Raspberry Pi install: numpy<2, OpenCV,
# tflite-runtime and onnxruntime only. No tensorflow, no ai-edge-litert.
$(DEVICE_VENV)/.installed: pyproject.toml
	test -x $(DEVICE_VENV)/bin/python || $(PYTHON) -m venv $(DEVICE_VENV)
	$(DEVICE_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(DEVICE_VENV)/bin/python -m pip install $(PIP_FLAGS) -e '.[tflite-runtime,onnx]' 'pytest>=7.4' 'jpeglib>=1.0'
	touch $@

# onnx2tf tool environment: converters translate ONNX models to TensorFlow with it (TFLite from ONNX).
# Its own Python: its pins do not co-install with $(VENV). converters find it here (or via EDGECV_ONNX2TF).
$(ONNX2TF_VENV)/.installed: requirements-onnx2tf.txt
	@test -n "$(PYTHON312)" || { echo "onnx2tf needs Python >= 3.12: install python3.12 or pass PYTHON312=/path/to/python3.12" >&2; exit 1; }
	test -x $(ONNX2TF_VENV)/bin/python || $(PYTHON312) -m venv $(ONNX2TF_VENV)
	$(ONNX2TF_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(ONNX2TF_VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements-onnx2tf.txt
	touch $@

onnx2tf: $(ONNX2TF_VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/edgecv demo

test: test-full test-device test-arm64-smoke

test-full: $(VENV)/.installed $(ONNX2TF_VENV)/.installed
	$(VENV)/bin/python -m pytest -q

# Runs the runtime tests on the lean install; a skipped or empty run fails.
test-device: $(DEVICE_VENV)/.installed
	EDGECV_LEAN_ENV=1 $(DEVICE_VENV)/bin/python -m pytest -q -m device -p no:cacheprovider

# The device tests on aarch64: an emulated Raspberry Pi 4 (QEMU user mode, no binfmt_misc, nothing
# machine-wide) running Debian's arm64 Python 3.11, once with tflite-runtime + numpy<2 and once with
# ai-edge-litert + numpy 2 (onnxruntime in both). Built once into .arm64/ by tools/arm64/build.sh.
test-arm64:
	tools/arm64/test.sh tflite-runtime
	tools/arm64/test.sh litert

# A few tests per real fixture family and runtime on aarch64 (tools/arm64/smoke.txt).
test-arm64-smoke:
	tools/arm64/test.sh tflite-runtime --smoke
	tools/arm64/test.sh litert --smoke

clean-arm64:
	rm -rf .arm64

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check edgecv converters targets tests bench examples

clean:
	rm -rf $(VENV) $(DEVICE_VENV) $(ONNX2TF_VENV) demo-out .pytest_cache
