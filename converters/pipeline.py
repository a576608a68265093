"""``converters.convert``: source model -> quantized, validated TFLite / ONNX artifacts with manifests.

The steps, in order:

1. check the arguments and decide the artifacts (:mod:`converters.plan`);
2. open the source (:mod:`converters.source`), map its outputs to roles;
3. read calibration and validation data through the runtime preprocessing,
   check them and refuse overlap between them (:mod:`converters.calibration`);
4. build every artifact into a hidden staging folder inside ``output_dir``
   (removing first those of conversions that were killed on this host),
   each with its manifest embedded (TFLite metadata ``EDGECV_MANIFEST`` /
   ONNX ``metadata_props["edgecv.manifest"]``);
5. run each through its edgecv task on the validation set and score it
   against the float model (:mod:`converters.validate`);
6. only then move the files into ``output_dir`` (``edgecv.atomic``). Any
   failure before that leaves ``output_dir`` as it was; existing files are
   never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shlex
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecv._version import __version__ as EDGECV_VERSION
from edgecv.atomic import atomic_path, atomic_write
from edgecv.errors import CalibrationError, ConfigError, ConversionError
from edgecv.manifest import MANIFEST_KEY, TFLITE_MANIFEST_NAME, Manifest, Preprocessing, normalize_task

from ._env import tool_versions
from .calibration import MIN_CALIBRATION_SAMPLES, CalibrationSet, Preprocess, calibration_set
from .heads import build_head, resolve_labels, resolve_preprocessing
from .plan import Plan, plan_artifacts
from .conversion_report import Artifact, ArtifactReport, ConversionReport, ConversionResult, recommend
from .source import TASK_ROLES, SourceModel, load_source, resolve_roles
from .validate import TaskOutputs, ValidationSet, preprocess_validation, primary_metric, safe_run, score, validation_set

__all__ = ["convert", "DEFAULT_BUDGET_POINTS"]

log = logging.getLogger("edgecv.converters")

DEFAULT_BUDGET_POINTS = 1.0
_PROBE_SAMPLES = 8


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _prepare_output_dir(output_dir: str | os.PathLike) -> tuple[Path, list[Path]]:
    """Create the output folder if needed; return it and the folders this call created (to undo on failure)."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output_dir {out} is a file, not a folder; choose a folder")
    created = []
    probe = out
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {out}: {exc.strerror or exc}; choose a writable folder") from exc
    return out, created


def _remove_created(created: list[Path]) -> None:
    for folder in created:  # innermost first; only while empty
        try:
            folder.rmdir()
        except OSError:
            return


_STAGE_PREFIX = ".edgecv-convert-"


def _host_tag() -> str:
    """This host's name (letters and digits) and, on Linux, its process-id namespace: whose process ids these are.

    Containers sharing a folder (and perhaps a host name) have their own process ids; the
    namespace number keeps one from taking another's running conversion for a killed one.
    """
    host = "".join(ch for ch in socket.gethostname() if ch.isalnum())[:32] or "host"
    try:
        namespace = "".join(ch for ch in os.readlink("/proc/self/ns/pid") if ch.isdigit())
    except OSError:
        namespace = ""
    return f"{host}n{namespace}" if namespace else host


def _process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (POSIX; True when it cannot be told)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                              # e.g. another user's process
        return True
    return True


def _remove_stale_stages(out: Path) -> list[Path]:
    """Remove the staging folders in *out* of conversions killed on this host; returns those removed.

    A conversion stages into ``.edgecv-convert-<host>-<pid>-*``; a kill (SIGKILL, power
    loss) cannot clean up. A folder is removed only when it names this host (see
    :func:`_host_tag`) and its process is gone, so a conversion still running, on this host or on another one
    sharing the folder, is never touched (a reused process id keeps a folder until later).
    POSIX only: elsewhere a process cannot be probed without side effects.
    """
    if os.name != "posix":
        return []
    host, removed = _host_tag(), []
    for entry in out.glob(_STAGE_PREFIX + "*"):
        fields = entry.name[len(_STAGE_PREFIX):].split("-")
        if (len(fields) < 3 or fields[0] != host or not fields[1].isdigit() or entry.is_symlink()
                or not entry.is_dir()):
            continue
        pid = int(fields[1])
        if pid == os.getpid() or _process_alive(pid):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            log.info("removed %s, left by a conversion that was killed", entry)
            removed.append(entry)
    return removed


def _stage_dir(out: Path) -> Path:
    """A new hidden staging folder in *out* (after removing those of killed conversions).

    Raises:
        ConfigError: *out* is not writable.
    """
    _remove_stale_stages(out)
    try:
        return Path(tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{_host_tag()}-{os.getpid()}-", dir=out))
    except OSError as exc:
        raise ConfigError(f"output folder {out} is not writable ({exc.strerror or exc}); choose another "
                          "output_dir") from exc


def _names(plans: list[Plan], stem: str) -> dict[Plan, str]:
    plain = {p: p.file_name(stem) for p in plans}
    clashes = {n for n in plain.values() if list(plain.values()).count(n) > 1}
    return {p: (p.file_name(stem, with_io=True) if plain[p] in clashes else plain[p]) for p in plans}


def _probe_inputs(pre: Preprocess, calib: CalibrationSet | None, val_inputs: np.ndarray | None) -> np.ndarray:
    """A few preprocessed inputs to look at the float outputs (probabilities? unit vectors?)."""
    if val_inputs is not None:
        return val_inputs[:_PROBE_SAMPLES]
    if calib is not None:
        probes = []
        for x in calib:
            probes.append(x[0])
            if len(probes) == _PROBE_SAMPLES:
                break
        return np.stack(probes)
    rng = np.random.default_rng(0)
    h, w = (pre.shape[1], pre.shape[2]) if pre.spec.layout != "nchw" else (pre.shape[2], pre.shape[3])
    return np.stack([pre(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))[0] for _ in range(2)])


def _num_classes(task: str, float_outputs: Mapping[str, np.ndarray], layout: str) -> int | None:
    if task == "classification" and "scores" in float_outputs:
        return int(float_outputs["scores"].shape[-1])
    if task == "segmentation" and "mask" in float_outputs and float_outputs["mask"].ndim == 4:
        return int(float_outputs["mask"].shape[-1 if layout == "nhwc" else 1])
    return None


class _Builder:
    """Builds the artifacts of one conversion into the staging folder."""

    def __init__(self, source: SourceModel, roles: dict[str, str], stage: Path, base_manifest: dict[str, Any],
                 calib: CalibrationSet | None, calibration_method: str, opset: int, per_channel: bool,
                 provenance: dict[str, Any], transform: Any = None) -> None:
        self.source = source
        self.roles = roles
        self.stage = stage
        self.base = base_manifest
        self.calib = calib
        self.method = calibration_method
        self.opset = opset
        self.per_channel = per_channel
        self.provenance = provenance
        self.transform = transform
        self._saved_model: Path | None = None
        self._onnx_float: Any = None
        self._onnx_notes: list[str] = []

    def manifest(self, plan: Plan, outputs: dict[str, str], extra: dict[str, Any]) -> Manifest:
        quant: dict[str, Any] = {"precision": plan.precision, "io_dtype": plan.io_dtype}
        if plan.precision == "int8" and self.calib is not None:
            method = "minmax" if plan.format == "tflite" else self.method
            quant["calibration"] = self.calib.summary(method)
            if plan.format == "onnx":
                quant.update({"format": "QDQ", "per_channel": self.per_channel})
        provenance = {**self.provenance, **extra, "precision": plan.precision, "format": plan.format,
                      "calibration": quant.get("calibration")}
        return Manifest(**self.base, outputs=outputs, quantization=quant, provenance=provenance)

    # -- TFLite --------------------------------------------------------------------
    def tflite(self, plan: Plan, dest: Path) -> list[str]:
        from .tflite_export import convert_tflite
        from .tflite_writer import embed_metadata, signature_outputs

        if self._saved_model is None:
            self._saved_model = Path(tempfile.mkdtemp(prefix="edgecv-savedmodel-"))
            self.source.write_saved_model(self.roles, self._saved_model / "model", self.transform)
        representative = (lambda: iter(self.calib)) if plan.precision == "int8" else None
        data = convert_tflite(str(self._saved_model / "model"), precision=plan.precision, io_dtype=plan.io_dtype,
                              representative=representative)
        names = signature_outputs(data)
        missing = [r for r in self.roles if r not in names]
        if missing:
            raise ConversionError(f"the TFLite model lost outputs {missing}; cannot map its roles")
        manifest = self.manifest(plan, {r: names[r] for r in self.roles},
                                 {"converter": "tf.lite.TFLiteConverter"})
        data = embed_metadata(data, TFLITE_MANIFEST_NAME, manifest.to_json().encode("utf-8"))
        atomic_write(dest, data, overwrite=False)
        return []

    # -- ONNX ------------------------------------------------------------------------
    def _float_onnx(self) -> Any:
        if self._onnx_float is None:
            if self.source.is_onnx:
                self._onnx_float = self.source.handle
            else:
                from .onnx_export import tf_to_onnx

                self._onnx_float = tf_to_onnx(self.source.serving_function(self.roles, self.transform),
                                              self.source.input_shape, opset=self.opset)
        return self._onnx_float

    def onnx(self, plan: Plan, dest: Path) -> list[str]:
        from .onnx_export import opset_of, quantize_int8_dynamic, quantize_int8_static, set_metadata, to_fp16

        model = self._float_onnx()
        notes: list[str] = []
        converter = "source ONNX" if self.source.is_onnx else "tf2onnx"
        if plan.precision == "fp16":
            model, converter = to_fp16(model), converter + " + onnxruntime float16 (keep_io_types)"
        elif plan.precision == "int8":
            input_name = self.source.input_name if self.source.is_onnx else "image"
            model, notes = quantize_int8_static(model, input_name, lambda: iter(self.calib), method=self.method,
                                                per_channel=self.per_channel)
            converter += " + onnxruntime.quantization.quantize_static (QDQ)"
        elif plan.precision == "dynamic":
            model, converter = quantize_int8_dynamic(model), converter + " + onnxruntime.quantization.quantize_dynamic"
        outputs = {role: (name if self.source.is_onnx else role) for role, name in self.roles.items()}
        graph_outputs = {o.name for o in model.graph.output}
        missing = [n for n in outputs.values() if n not in graph_outputs]
        if missing:
            raise ConversionError(f"the ONNX model lost outputs {missing}; cannot map its roles")
        manifest = self.manifest(plan, outputs, {"converter": converter, "opset": opset_of(model),
                                                 "conversion_notes": notes})
        model = set_metadata(model, MANIFEST_KEY, manifest.to_json())
        atomic_write(dest, model.SerializeToString(), overwrite=False)
        return notes

    def build(self, plan: Plan, dest: Path) -> list[str]:
        return self.tflite(plan, dest) if plan.format == "tflite" else self.onnx(plan, dest)

    def close(self) -> None:
        if self._saved_model is not None:
            shutil.rmtree(self._saved_model, ignore_errors=True)


def _compile_edgetpu(staged: Path, stage: Path, manifest_json: bytes,
                     final: Path) -> tuple[Path | None, dict[str, Any]]:
    """Run edgetpu_compiler on a staged int8 model when it is installed; re-embed the manifest.

    When the compiler is missing, the reported command names the published
    file (*final*) and its folder, not the staging copy.
    """
    try:
        from .edgetpu import compile_for_edgetpu, compiler_command
    except ImportError:
        return None, {"ok": False, "compiler_found": False,
                      "failure": "converters.edgetpu is not available in this install"}
    result = compile_for_edgetpu(staged, stage)
    info = result.to_dict()
    if not result.compiler_found:
        command = compiler_command(final, final.parent)
        info["command"] = command
        info["command_line"] = " ".join(shlex.quote(a) for a in command)
    if not result.ok or result.output_model is None:
        return None, info
    from .tflite_writer import embed_metadata

    compiled = Path(result.output_model)
    atomic_write(compiled, embed_metadata(compiled.read_bytes(), TFLITE_MANIFEST_NAME, manifest_json))
    info["output_models"] = [str(final.parent / compiled.name)]
    info["log_files"] = []
    return compiled, info


def _diffs(raw: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> tuple[dict[str, float], list[str]]:
    out: dict[str, float] = {}
    notes: list[str] = []
    for role, ref in reference.items():
        got = raw.get(role)
        if got is None:
            continue
        if got.size != ref.size:
            notes.append(f"output {role!r} has {got.size} values but the float source {ref.size}; not compared")
            continue
        out[role] = float(np.max(np.abs(got.reshape(-1).astype(np.float64) - ref.reshape(-1).astype(np.float64))))
    return out, notes


def convert(model: Any, *, task: str, target: Any = "cpu", precision: str | Sequence[str] | None = None,
            calibration: Any = None, validation: Any = None, labels: Sequence[str] | str | os.PathLike | None = None,
            preprocessing: Preprocessing | Mapping[str, Any] | None = None, anchors: Any = None,
            output_dir: str | os.PathLike = "edgecv-out", overwrite: bool = False,
            formats: str | Sequence[str] | None = None, io_dtype: str | None = None,
            head: Mapping[str, Any] | None = None, outputs: Mapping[str, str | int] | None = None,
            name: str | None = None, color: str = "bgr", calibration_method: str = "minmax",
            per_channel: bool = True, allow_overlap: bool = False,
            accuracy_budget: float = DEFAULT_BUDGET_POINTS, opset: int | None = None,
            input_shape: tuple[int, ...] | None = None, custom_objects: Mapping[str, Any] | None = None,
            postprocess: str = "none", min_calibration: int = MIN_CALIBRATION_SAMPLES,
            write_report: bool = True) -> ConversionResult:
    """Quantize and export *model* for a target, validate every artifact, and write them atomically.

    Args:
        model: a ``keras.Model``, a ``.keras``/``.h5`` file, a SavedModel folder, or an ``.onnx`` file
            (ONNX sources give ONNX artifacts only).
        task: "classification", "detection", "segmentation" or "embedding" (or classify/detect/segment/embed).
        target: a target name or ``targets.Target`` (its recipes decide formats, precisions and I/O types),
            or None to build exactly the *precision* x *formats* asked for.
        precision: one or several of "fp32", "fp16", "dynamic", "int8"; None: all of the target's
            (target=None: all four).
        calibration: for int8: a folder of images, a (N, H, W, 3) uint8 image array, a float array of
            already-preprocessed inputs (N, *input shape), or a list of images / paths / tensors (see
            :mod:`converters.calibration`). 100-500 representative images; at least *min_calibration*.
        validation: held-out images with optional ground truth: a :class:`ValidationSet`, a
            ``ShapesDataset``, a dict of ValidationSet fields, a folder, an image array or a list of images.
            Must not overlap the calibration set (checked by content hash) unless *allow_overlap*.
        labels: class names (sequence or label file), stored in the manifest.
        preprocessing: a :class:`edgecv.Preprocessing` or a dict of its fields (mean/std per channel on
            0-255 pixels, color, resize, ...): how the device turns images into inputs. Stored in the
            manifest; calibration and validation go through exactly this path. Default: (x - 127.5) / 127.5, RGB.
        anchors: detection with raw SSD outputs: an ``edgecv.anchors.AnchorSpec``; stored in the manifest
            and decoded by the runtime (box coder: TF OD API scales 10, 10, 5, 5 unless ``head`` says otherwise).
        output_dir: folder for the artifacts (created if missing).
        overwrite: replace existing files of the same names.
        formats: narrow to "tflite" and/or "onnx".
        io_dtype: input/output type of full-integer TFLite int8: "uint8" (Coral), "int8" or "float32".
        head: task-specific manifest settings (see the manifest contract), e.g. ``{"score_threshold": 0.7}``.
        outputs: ``{role: source output name or index}`` when the source's output names do not say it.
        name: stem of the artifact file names (default: the source's name).
        color: channel order of array images in calibration and validation ("bgr" or "rgb").
        calibration_method: ONNX int8: "minmax", "entropy" or "percentile" (TFLite's converter calibrates min/max).
        per_channel: ONNX int8: per-channel weight scales.
        allow_overlap: accept calibration images in the validation set (figures will be optimistic).
        accuracy_budget: allowed drop of the primary metric, in points, for the recommendation (default 1).
        opset: ONNX opset for TensorFlow sources (default 17).
        input_shape: (H, W, C) when the source's input size is dynamic.
        custom_objects: custom Keras layers for loading ``.keras``/``.h5`` files.
        postprocess: detection with raw SSD outputs: "none" (default: raw outputs, anchors in the manifest,
            decoded by the runtime) or "decode" (box decoding and score activation added to the graph, TensorFlow
            sources only; see :mod:`converters.postprocess`). In-graph NMS is not produced.
        min_calibration: fewest distinct calibration inputs accepted.
        write_report: also write ``<name>_report.json`` next to the artifacts.

    Returns:
        A :class:`ConversionResult` (``.artifacts``, ``.report``).

    Raises:
        ConfigError: a bad argument (unknown task, precision, format, I/O type, head key; output folder
            not writable; an existing file without overwrite=True).
        UnknownTargetError: unknown target name.
        CalibrationError: empty, malformed, constant or too small calibration set, or overlap with validation.
        UnsupportedOpError: an op the requested precision/format cannot express (named).
        ConversionError: the conversion failed otherwise (TFLite from ONNX included).
        ModelLoadError: the source model cannot be read.
    """
    started = time.perf_counter()
    task = normalize_task(task)
    if not isinstance(accuracy_budget, (int, float)) or isinstance(accuracy_budget, bool) or accuracy_budget < 0:
        raise ConfigError(f"accuracy_budget must be a non-negative number of points, got {accuracy_budget!r}")
    if color not in ("bgr", "rgb"):
        raise ConfigError(f"color must be 'bgr' or 'rgb', got {color!r}")
    from .onnx_export import CALIBRATION_METHODS, DEFAULT_OPSET

    if calibration_method not in CALIBRATION_METHODS:
        raise ConfigError(f"calibration_method {calibration_method!r} is not one of {CALIBRATION_METHODS}")
    opset = DEFAULT_OPSET if opset is None else opset
    if not isinstance(opset, int) or isinstance(opset, bool) or not 13 <= opset <= 21:
        raise ConfigError(f"opset must be an int in 13..21, got {opset!r}")
    Preprocessing.coerce(preprocessing)  # bad preprocessing fails before any work
    from .postprocess import POSTPROCESS

    if postprocess not in POSTPROCESS:
        raise ConfigError(f"postprocess must be one of {POSTPROCESS}, got {postprocess!r}"
                          + ("; in-graph NMS is not produced (TensorFlow's NMS ops are not TFLite builtins): the "
                             "runtime runs NMS" if postprocess == "nms" else ""))
    if postprocess != "none" and task != "detection":
        raise ConfigError(f"postprocess={postprocess!r} is for detection models, not {task}")
    source_is_onnx = isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".onnx")
    plans, target_name, notes = plan_artifacts(target, precision, formats, io_dtype, source_is_onnx=source_is_onnx)
    out_dir, created_dirs = _prepare_output_dir(output_dir)
    try:
        source = load_source(model, input_shape=input_shape, custom_objects=custom_objects)
        stem = name if name is not None else source.name
        if not isinstance(stem, str) or not stem or any(c in stem for c in "/\\") or stem.startswith("."):
            raise ConfigError(f"name must be a plain file stem, got {stem!r}")
        roles = resolve_roles(task, source.output_names, outputs)
        pre_options, pre_notes = resolve_preprocessing(preprocessing, source.layout)
        notes += pre_notes
        pre = Preprocess(source.input_spec(), pre_options, color)

        # reference: fp32 of the first format, built (unpublished) for validation when not asked for
        first_format = plans[0].format
        reference_plan = next((p for p in plans if p.format == first_format and p.precision == "fp32"), None)
        if reference_plan is None and validation is not None:
            reference_plan = Plan(first_format, "fp32", "float32", publish=False)
            plans = [reference_plan, *plans]
        elif reference_plan is not None:
            plans = [reference_plan, *[p for p in plans if p is not reference_plan]]
        names = _names([p for p in plans if p.publish], stem)
        if reference_plan is not None:
            names[reference_plan] = names.get(reference_plan, reference_plan.file_name(stem))
        destinations = {p: out_dir / names[p] for p in plans if p.publish}
        report_path = out_dir / f"{stem}_report.json"
        if not overwrite:
            existing = [str(d) for d in [*destinations.values(), *([report_path] if write_report else [])] if d.exists()]
            if existing:
                raise ConfigError(f"{existing[0]} already exists; pass overwrite=True (CLI: --force) to replace it"
                                  + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""))

        # data: calibration, validation, overlap
        calib = None
        if any(p.needs_calibration for p in plans):
            calib = calibration_set(calibration, pre, min_size=min_calibration)
        elif calibration is not None:
            notes.append("calibration data not used: no artifact needs it (only full-integer int8 does)")
        vs: ValidationSet | None = None
        val_inputs = None
        if validation is not None:
            vs = validation_set(validation, color=color)
            val_inputs, val_hashes = preprocess_validation(vs, pre)
            if calib is not None:
                shared = calib.hashes & val_hashes
                if shared and not allow_overlap:
                    raise CalibrationError(
                        f"{len(shared)} of the {len(val_hashes)} distinct validation inputs are also in the calibration "
                        "set; validation must be held out or its figures are optimistic. Use separate images, or pass "
                        "allow_overlap=True to accept that")
                if shared:
                    notes.append(f"{len(shared)} validation inputs are also calibration inputs (allow_overlap=True): "
                                 "int8 figures are optimistic")
        else:
            notes.append("no validation set: artifacts were not validated (pass validation= held-out images)")

        probe = _probe_inputs(pre, calib, val_inputs)
        float_probe = source.predict(probe, roles)
        labels_tuple, label_offset = resolve_labels(labels, task, _num_classes(task, float_probe, source.layout))
        manifest_head = build_head(task, head, anchors=anchors, float_outputs=float_probe, layout=source.layout)
        transform = None
        if postprocess == "decode":
            from .postprocess import decoded_head, decoder_for

            if source.is_onnx:
                raise ConversionError("postprocess='decode' adds TensorFlow ops and is not possible for an ONNX source; "
                                      "convert without it (the runtime decodes from the manifest's anchors)")
            transform = decoder_for(manifest_head)
            manifest_head = decoded_head(manifest_head)
        provenance = {
            "source_sha256": source.sha256, "source_kind": source.kind,
            "source_name": source.path.name if source.path is not None else source.name,
            "tools": tool_versions(), "edgecv": EDGECV_VERSION,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        base_manifest = {"task": task, "labels": labels_tuple, "label_offset": label_offset,
                         "preprocessing": pre_options, "head": manifest_head, "target": target_name}

        stage = _stage_dir(out_dir)
        preexisting = {d for d in [*destinations.values(), report_path] if d.exists()}
        if transform is not None:
            provenance["postprocess"] = "decode"
        builder = _Builder(source, roles, stage, base_manifest, calib, calibration_method, opset, per_channel, provenance,
                           transform)
        published: list[Path] = []
        try:
            staged: dict[Plan, Path] = {}
            build_notes: dict[Plan, list[str]] = {}
            edgetpu_info: dict[str, Any] | None = None
            compiled: dict[Plan, Path] = {}
            for plan in plans:
                dest = stage / names[plan]
                log.info("building %s", dest.name)
                build_notes[plan] = builder.build(plan, dest)
                staged[plan] = dest
                if plan.edgetpu_compile:
                    from edgecv.formats.tflite import read_tflite

                    manifest_json = read_tflite(str(dest)).metadata[TFLITE_MANIFEST_NAME]
                    path, edgetpu_info = _compile_edgetpu(dest, stage, manifest_json, destinations[plan])
                    if path is not None:
                        compiled[plan] = path
                    elif not edgetpu_info.get("compiler_found", True):
                        notes.append(f"Edge TPU compile not done: edgetpu_compiler is not installed here; on an "
                                     f"x86-64 Linux host run `{edgetpu_info.get('command_line')}` "
                                     "(install hint in report.edgetpu)")
                    else:
                        notes.append(f"Edge TPU compile failed: {edgetpu_info.get('failure')}")
            source_float = source.predict(val_inputs, roles, transform) if vs is not None else None

            # validation
            task_roles = TASK_ROLES[task]
            outputs_by_plan: dict[Plan, TaskOutputs | None] = {}
            run_notes: dict[Plan, list[str]] = {p: list(build_notes[p]) for p in plans}
            if vs is not None:
                for plan in plans:
                    log.info("validating %s on %d images", names[plan], len(vs))
                    result, failure = safe_run(task, staged[plan], vs, task_roles)
                    outputs_by_plan[plan] = result
                    if failure is not None:
                        run_notes[plan].append("validation failed: " + failure)
            reference_out = outputs_by_plan.get(reference_plan) if reference_plan is not None else None
            if vs is not None and reference_out is None:
                raise ConversionError(f"the float reference {names[reference_plan]} failed to run through the "
                                      f"{task} task: {'; '.join(run_notes[reference_plan])}")
            primary = primary_metric(task, vs)
            num_classes = _num_classes(task, float_probe, source.layout)
            reports: list[ArtifactReport] = []
            ref_metrics: dict[str, float] = {}
            if reference_out is not None:
                ref_metrics = score(task, reference_out, reference_out, vs, head=manifest_head, num_classes=num_classes)
            for plan in plans:
                path = staged[plan]
                result = outputs_by_plan.get(plan)
                metrics: dict[str, float] = {}
                diffs: dict[str, float] = {}
                drop = within = None
                if result is not None and reference_out is not None:
                    metrics = score(task, result, reference_out, vs, head=manifest_head, num_classes=num_classes)
                    diffs, diff_notes = _diffs(result.raw, source_float)
                    run_notes[plan] += diff_notes
                    if primary in metrics and primary in ref_metrics:
                        drop = 100.0 * (ref_metrics[primary] - metrics[primary])
                        within = drop <= accuracy_budget + 1e-9
                reports.append(ArtifactReport(
                    name=names[plan], path=str(destinations[plan]) if plan.publish else None, format=plan.format,
                    precision=plan.precision, io_dtype=plan.io_dtype, size_bytes=path.stat().st_size,
                    sha256=_sha256(path), metrics=metrics, max_abs_diff=max(diffs.values()) if diffs else None,
                    max_abs_diff_by_output=diffs, drop_points=drop, within_budget=within,
                    reference=plan is reference_plan, validated=result is not None, notes=tuple(run_notes[plan])))
                if plan in compiled:
                    cpath = compiled[plan]
                    reports.append(ArtifactReport(
                        name=cpath.name, path=str(out_dir / cpath.name), format="tflite", precision="int8",
                        io_dtype=plan.io_dtype, size_bytes=cpath.stat().st_size, sha256=_sha256(cpath),
                        notes=(f"compiled for the Edge TPU from {names[plan]}; not run here (needs an Edge TPU): "
                               f"its accuracy is that of {names[plan]}",)))
            target_formats = tuple(dict.fromkeys(p.format for p in plans))
            recommended, why = recommend(reports, target_formats, float(accuracy_budget), primary)
            if recommended is not None:
                twin = next((p for p, c in compiled.items() if names[p] == recommended), None)
                if twin is not None:
                    recommended, why = compiled[twin].name, why + "; Edge TPU-compiled build of it"
            calibration_info = calib.summary(calibration_method) if calib is not None else None
            report = ConversionReport(
                task=task, target=target_name, primary_metric=primary, budget_points=float(accuracy_budget),
                validation_size=len(vs) if vs is not None else 0, calibration=calibration_info,
                source={"kind": source.kind, "path": str(source.path) if source.path is not None else None,
                        "sha256": source.sha256, "input_shape": list(source.input_shape)},
                artifacts=tuple(reports), recommended=recommended, recommendation=why, edgetpu=edgetpu_info,
                elapsed_s=time.perf_counter() - started, notes=tuple(notes))

            # publish
            artifacts: list[Artifact] = []
            moves = [(staged[p], destinations[p], p, False) for p in plans if p.publish]
            moves += [(c, out_dir / c.name, p, True) for p, c in compiled.items()]
            for src, dest, plan, is_edgetpu in moves:
                size, digest = src.stat().st_size, _sha256(src)
                with atomic_path(dest, overwrite=overwrite) as tmp:
                    os.replace(src, tmp)
                published.append(dest)
                artifacts.append(Artifact(str(dest), plan.format, plan.precision, plan.io_dtype, size, digest, is_edgetpu))
            written_report = None
            if write_report:
                written_report = str(atomic_write(report_path, report.to_json(), overwrite=overwrite))
                published.append(report_path)
            return ConversionResult(tuple(artifacts), report, str(out_dir), written_report)
        except BaseException:
            for path in published:  # all or nothing: undo what this call added (replaced files stay replaced)
                if path in preexisting:
                    continue
                try:
                    path.unlink()
                except OSError:
                    log.error("could not remove %s after a failed conversion", path)
            raise
        finally:
            builder.close()
            shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        _remove_created(created_dirs)
        raise

