"""The model being converted: a Keras model, a ``.keras``/``.h5`` file, a SavedModel or an ONNX file.

:func:`load_source` turns any of them into a :class:`SourceModel` that knows
its one image input, its outputs, its content hash, and how to

* run in float on preprocessed inputs (the reference for validation),
* become a batch-1 TensorFlow function returning ``{role: tensor}`` (for
  TFLite and tf2onnx), or hand over its ONNX bytes.

Only float32 image inputs of fixed height, width and channels are accepted;
the batch dimension is fixed to 1 in every artifact.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecv.errors import ConfigError, ConversionError, ModelLoadError, did_you_mean
from edgecv.hashing import sha256_file, sha256_tree
from edgecv.manifest import Preprocessing
from edgecv.specs import TensorSpec, guess_layout
from edgecv.task_registry import get_task

from ._env import import_onnx, import_onnxruntime, import_tensorflow
from .calibration import Preprocess
from .heads import resolve_preprocessing

if TYPE_CHECKING:
    from .options import ConvertOptions

__all__ = ["SourceModel", "load_source", "resolve_roles", "OpenedSource", "open_source"]

log = logging.getLogger("edgecv.converters")

INPUT_NAME = "image"


@dataclass
class SourceModel:
    """One loaded source model (see module doc).

    Attributes:
        kind: "keras", "keras-file", "saved-model" or "onnx".
        path: the file or folder it came from (None for an in-memory Keras model).
        sha256: content hash (file bytes, folder tree, or Keras config + weights).
        name: stem used for artifact file names.
        input_name: name of the image input in the source.
        input_shape: input shape with batch 1.
        output_names: the source's output names, in order.
    """

    kind: str
    path: Path | None
    sha256: str
    name: str
    input_name: str
    input_shape: tuple[int, ...]
    output_names: tuple[str, ...]
    handle: Any = field(repr=False, default=None)
    _ort_session: Any = field(repr=False, default=None)

    @property
    def is_onnx(self) -> bool:
        return self.kind == "onnx"

    @property
    def layout(self) -> str:
        return guess_layout(self.input_shape) or "nhwc"

    def input_spec(self) -> TensorSpec:
        """The float32 input as a TensorSpec (for edgecv's Preprocessor)."""
        return TensorSpec(self.input_name, self.input_shape, "float32", None, self.layout, 0)

    # -- TensorFlow side --------------------------------------------------------------
    def serving_function(self, roles: Mapping[str, str],
                         transform: Callable[[Any, dict], dict] | None = None) -> Any:
        """A batch-1 ``tf.function(image) -> {role: tensor}`` over the source.

        *transform* ``(tf, outputs) -> outputs`` adds graph after the model
        (e.g. in-graph box decoding, :mod:`converters.postprocess`).

        Raises:
            ConversionError: ONNX sources have no TensorFlow function.
        """
        if self.is_onnx:
            raise ConversionError("an ONNX source has no TensorFlow function of its own: its TFLite artifacts are "
                                  "built from onnx2tf's translation (converters.onnx_translate)")
        tf = import_tensorflow()
        signature = [tf.TensorSpec(list(self.input_shape), tf.float32, name=INPUT_NAME)]
        pick = {role: self.output_names.index(name) for role, name in roles.items()}
        if self.kind in ("keras", "keras-file"):
            model = self.handle

            @tf.function(input_signature=signature)
            def serve(image):
                outs = model(image, training=False)
                outs = _as_list(outs, self.output_names)
                result = {role: outs[i] for role, i in pick.items()}
                return transform(tf, result) if transform is not None else result
        else:
            fn = self.handle.signatures["serving_default"]
            key = self.input_name

            @tf.function(input_signature=signature)
            def serve(image):
                outs = fn(**{key: image})
                result = {role: outs[self.output_names[i]] for role, i in pick.items()}
                return transform(tf, result) if transform is not None else result
        return serve

    def write_saved_model(self, roles: Mapping[str, str], directory: str | os.PathLike,
                          transform: Callable[[Any, dict], dict] | None = None) -> None:
        """Write a SavedModel whose ``serving_default`` is :meth:`serving_function` (for the TFLite converter).

        Raises:
            ConversionError: TensorFlow failed to save it.
        """
        tf = import_tensorflow()
        serve = self.serving_function(roles, transform)
        try:
            if self.kind in ("keras", "keras-file"):
                import keras

                archive = keras.export.ExportArchive()
                archive.track(self.handle)
                archive.add_endpoint("serving_default", serve)
                archive.write_out(str(directory), verbose=False)
            else:  # a loaded SavedModel is trackable: wrap it in a module
                module = tf.Module()
                module.source = self.handle
                module.serve = serve
                tf.saved_model.save(module, str(directory), signatures={"serving_default": serve.get_concrete_function()})
        except Exception as exc:
            raise ConversionError(f"could not export the model as a SavedModel for conversion: {_first_line(exc)}") from exc

    # -- float reference -----------------------------------------------------------------
    def predict(self, inputs: np.ndarray, roles: Mapping[str, str], transform: Callable[[Any, dict], dict] | None = None,
                *, batch_size: int = 32) -> dict[str, np.ndarray]:
        """Run the float source on preprocessed inputs ``(N, *input_shape[1:])``; returns ``{role: (N, ...)}``.

        *transform* is applied to the outputs as in :meth:`serving_function` (TensorFlow sources).

        Raises:
            ConversionError: the source failed to run.
        """
        results: dict[str, list[np.ndarray]] = {role: [] for role in roles}
        try:
            if self.is_onnx:
                session = self._session()
                names = list(roles.values())
                for x in inputs:
                    outs = session.run(names, {self.input_name: x[None].astype(np.float32)})
                    for role, out in zip(roles, outs):
                        results[role].append(np.asarray(out))
            elif self.kind in ("keras", "keras-file"):
                tf = import_tensorflow()
                pick = {role: self.output_names.index(name) for role, name in roles.items()}
                for start in range(0, len(inputs), batch_size):
                    outs = _as_list(self.handle(inputs[start:start + batch_size], training=False), self.output_names)
                    got = {role: outs[i] for role, i in pick.items()}
                    got = transform(tf, got) if transform is not None else got
                    for role in roles:
                        results[role].append(np.asarray(got[role]))
            else:
                tf = import_tensorflow()
                fn = self.handle.signatures["serving_default"]
                for x in inputs:
                    outs = fn(**{self.input_name: tf.constant(x[None], tf.float32)})
                    got = {role: outs[name] for role, name in roles.items()}
                    got = transform(tf, got) if transform is not None else got
                    for role in roles:
                        results[role].append(np.asarray(got[role]))
        except ConversionError:
            raise
        except Exception as exc:
            raise ConversionError(f"the source model failed to run on the validation inputs: {_first_line(exc)}") from exc
        return {role: np.concatenate(parts, axis=0) for role, parts in results.items()}

    def _session(self) -> Any:
        if self._ort_session is None:
            ort = import_onnxruntime()
            options = ort.SessionOptions()
            options.log_severity_level = 3
            self._ort_session = ort.InferenceSession(self.handle.SerializeToString(), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        return self._ort_session


def _as_list(outs: Any, names: tuple[str, ...]) -> list[Any]:
    if isinstance(outs, Mapping):
        return [outs[n] for n in names]
    if isinstance(outs, (list, tuple)):
        return list(outs)
    return [outs]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else exc.__class__.__name__


def _hash_keras(model: Any) -> str:
    h = hashlib.sha256()
    try:
        h.update(model.to_json().encode("utf-8"))
    except Exception:  # subclassed models without a config: weights still identify them
        h.update(type(model).__name__.encode("utf-8"))
    for w in model.weights:
        h.update(np.ascontiguousarray(np.asarray(w)).tobytes())
    return h.hexdigest()


def _image_shape(shape: tuple[Any, ...], given: tuple[int, ...] | None, what: str) -> tuple[int, ...]:
    dims = list(shape)
    if len(dims) != 4:
        raise ConversionError(f"{what} has input shape {dims}; edgecv converts image models with one "
                              "rank-4 input ([N,H,W,C] or [N,C,H,W])")
    if given is not None:
        g = tuple(int(d) for d in given)
        if len(g) == 3:
            g = (1, *g)
        if len(g) != 4:
            raise ConfigError(f"input_shape must be (H, W, C) or (1, H, W, C), got {given!r}")
        for d, want in zip(dims[1:], g[1:]):
            if d is not None and int(d) > 0 and int(d) != want:
                raise ConfigError(f"input_shape {g} contradicts the model's input shape {dims}")
        return (1, *g[1:])
    rest = []
    for d in dims[1:]:
        if d is None or not isinstance(d, (int, np.integer)) or int(d) <= 0:
            raise ConversionError(f"{what} has a dynamic input size {dims}; pass input_shape=(H, W, C) "
                                  "to fix it for the device")
        rest.append(int(d))
    return (1, *rest)


def load_source(model: Any, *, input_shape: tuple[int, ...] | None = None,
                custom_objects: Mapping[str, Any] | None = None) -> SourceModel:
    """Open *model* for conversion.

    Args:
        model: a ``keras.Model``, a path to a ``.keras``/``.h5`` file, a SavedModel
            folder, or an ``.onnx`` file.
        input_shape: (H, W, C) when the model's own input size is dynamic.
        custom_objects: passed to ``keras.saving.load_model`` for custom layers.

    Raises:
        ModelLoadError: missing, unreadable or unrecognised file.
        ConversionError: not a single-image-input float model.
        ConfigError: bad *input_shape*.
    """
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.exists():
            raise ModelLoadError(f"model {path} does not exist")
        if path.is_dir():
            if not (path / "saved_model.pb").is_file():
                raise ModelLoadError(f"{path} is a folder without saved_model.pb; pass a SavedModel folder, "
                                     "a .keras/.h5 file or an .onnx file")
            return _load_saved_model(path, input_shape)
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            return _load_onnx(path, input_shape)
        if suffix in (".keras", ".h5", ".hdf5"):
            return _load_keras_file(path, input_shape, custom_objects)
        if suffix == ".tflite":
            raise ConversionError(f"{path.name} is already a TFLite model; edgecv converts from Keras, "
                                  "SavedModel or ONNX sources (re-export from the training framework)")
        raise ModelLoadError(f"cannot tell what {path.name} is from its suffix {suffix!r}; expected .keras, .h5, "
                             ".onnx or a SavedModel folder")
    if _is_keras_model(model):
        return _from_keras(model, "keras", None, input_shape)
    raise ConfigError(f"model must be a keras.Model or a path, got {type(model).__name__}")


def _is_keras_model(obj: Any) -> bool:
    try:
        import keras
    except ImportError:
        return False
    return isinstance(obj, keras.Model)


def _from_keras(model: Any, kind: str, path: Path | None, input_shape: tuple[int, ...] | None) -> SourceModel:
    inputs = list(getattr(model, "inputs", None) or [])
    if len(inputs) != 1:
        raise ConversionError(f"the Keras model has {len(inputs)} inputs; edgecv converts models with one image "
                              "input (build the model with keras.Input so its input is known)")
    dtype = str(getattr(inputs[0], "dtype", "float32"))
    if "float" not in dtype:
        raise ConversionError(f"the Keras model's input is {dtype}; edgecv feeds float32 image inputs (put any "
                              "uint8 handling in the preprocessing, not the model)")
    shape = _image_shape(tuple(inputs[0].shape), input_shape, "the Keras model")
    names = tuple(str(n) for n in getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))])
    sha = sha256_file(path) if path is not None else _hash_keras(model)
    name = path.stem if path is not None else (getattr(model, "name", None) or "model")
    return SourceModel(kind, path, sha, _safe_stem(name), INPUT_NAME, shape, names, model)


def _load_keras_file(path: Path, input_shape: tuple[int, ...] | None,
                     custom_objects: Mapping[str, Any] | None) -> SourceModel:
    import_tensorflow()
    try:
        import keras

        model = keras.saving.load_model(str(path), custom_objects=dict(custom_objects or {}), compile=False)
    except Exception as exc:
        raise ModelLoadError(f"Keras could not load {path}: {_first_line(exc)}; if it has custom layers, pass "
                             "custom_objects={...}") from exc
    return _from_keras(model, "keras-file", path, input_shape)


def _load_saved_model(path: Path, input_shape: tuple[int, ...] | None) -> SourceModel:
    tf = import_tensorflow()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ModelLoadError(f"TensorFlow could not load the SavedModel {path}: {_first_line(exc)}") from exc
    signatures = getattr(loaded, "signatures", {})
    if "serving_default" not in signatures:
        raise ConversionError(f"SavedModel {path} has no 'serving_default' signature (it has "
                              f"{sorted(signatures)}); export it with one")
    fn = signatures["serving_default"]
    args, kwargs = fn.structured_input_signature
    specs = list(kwargs.items())
    if args or len(specs) != 1:
        raise ConversionError(f"SavedModel {path} serving signature takes {len(args) + len(specs)} inputs; "
                              "edgecv converts models with one image input")
    key, spec = specs[0]
    if not spec.dtype.is_floating:
        raise ConversionError(f"SavedModel {path} input {key!r} is {spec.dtype.name}; edgecv feeds float32 images")
    shape = _image_shape(tuple(spec.shape.as_list()), input_shape, f"SavedModel {path}")
    outputs = tuple(sorted(fn.structured_outputs))
    return SourceModel("saved-model", path, sha256_tree(path), _safe_stem(path.name), key, shape, outputs, loaded)


def _load_onnx(path: Path, input_shape: tuple[int, ...] | None) -> SourceModel:
    onnx = import_onnx()
    try:
        proto = onnx.load(str(path))
    except Exception as exc:
        raise ModelLoadError(f"{path} is not a readable ONNX model: {_first_line(exc)}") from exc
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ConversionError(f"ONNX model {path.name} has {len(inputs)} inputs; edgecv converts models with one "
                              "image input")
    tensor_type = inputs[0].type.tensor_type
    if tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ConversionError(f"ONNX model {path.name} input is not float32 (type {tensor_type.elem_type}); "
                              "edgecv quantizes float models")
    dims = tuple((d.dim_value if d.HasField("dim_value") else None) for d in tensor_type.shape.dim)
    shape = _image_shape(dims, input_shape, f"ONNX model {path.name}")
    if input_shape is not None or any(d is None for d in dims):
        _fix_onnx_input(proto, shape)
    outputs = tuple(o.name for o in proto.graph.output)
    sha = sha256_file(path)
    return SourceModel("onnx", path, sha, _safe_stem(path.stem), inputs[0].name, shape, outputs, proto)


def _fix_onnx_input(proto: Any, shape: tuple[int, ...]) -> None:
    """Give the image input of *proto* the fixed *shape* (batch 1)."""
    initializers = {i.name for i in proto.graph.initializer}
    graph_input = next(i for i in proto.graph.input if i.name not in initializers)
    for d, value in zip(graph_input.type.tensor_type.shape.dim, shape):
        d.ClearField("dim_param")
        d.dim_value = int(value)


def _safe_stem(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)).strip("._")
    return stem or "model"


def resolve_roles(task: str, output_names: tuple[str, ...], outputs: Mapping[str, str | int] | None) -> dict[str, str]:
    """Map each of the task's output roles to a source output name.

    Args:
        task: canonical task name.
        output_names: the source's outputs.
        outputs: explicit ``{role: output name or index}``; None to infer (one
            output for a one-role task, or outputs named like the roles).

    Raises:
        ConfigError: unknown role, unknown output, or roles that cannot be inferred.
    """
    roles = get_task(task).export_roles
    if outputs is not None:
        if not isinstance(outputs, Mapping):
            raise ConfigError(f"outputs must be a dict {{role: output name or index}}, got {type(outputs).__name__}")
        mapping: dict[str, str] = {}
        for role, ref in outputs.items():
            if role not in roles:
                raise ConfigError(f"output role {role!r} is not one of {task}'s roles {roles}{did_you_mean(role, roles)}")
            if isinstance(ref, int) and not isinstance(ref, bool):
                if not 0 <= ref < len(output_names):
                    raise ConfigError(f"output index {ref} out of range; the model has {len(output_names)} outputs")
                mapping[role] = output_names[ref]
            elif ref in output_names:
                mapping[role] = str(ref)
            else:
                raise ConfigError(f"the model has no output {ref!r}{did_you_mean(str(ref), output_names)}; "
                                  f"outputs are {list(output_names)}")
        missing = [r for r in roles if r not in mapping]
        if missing:
            raise ConfigError(f"outputs must name every {task} role {roles}; missing {missing}")
        return mapping
    if len(roles) == 1 and len(output_names) == 1:
        return {roles[0]: output_names[0]}
    if all(r in output_names for r in roles):
        return {r: r for r in roles}
    raise ConfigError(f"cannot tell which of the model's outputs {list(output_names)} are the {task} roles "
                      f"{roles}; pass outputs={{{', '.join(repr(r) + ': <output name>' for r in roles)}}}")


@dataclass(frozen=True)
class OpenedSource:
    """The source stage's result: the loaded model and how its inputs and outputs are read.

    Attributes:
        model: the loaded source.
        roles: output role -> source output name.
        preprocessing: the preprocessing stored in the manifests (mean, std and layout explicit).
        preprocess: image -> float input through the runtime's preprocessing, for calibration and validation.
        stem: stem of the artifact file names.
        notes: what was assumed, for the report.
    """

    model: SourceModel
    roles: Mapping[str, str]
    preprocessing: Preprocessing
    preprocess: Preprocess
    stem: str
    notes: tuple[str, ...] = ()


def open_source(options: ConvertOptions) -> OpenedSource:
    """Load the source of a :class:`converters.options.ConvertOptions`, map its outputs and fix its preprocessing.

    Raises:
        ModelLoadError: missing, unreadable or unrecognised model.
        ConversionError: not a single-image-input float model.
        ConfigError: bad name, input_shape, outputs or preprocessing.
    """
    source = load_source(options.model, input_shape=options.input_shape, custom_objects=options.custom_objects)
    stem = options.name if options.name is not None else source.name
    if not isinstance(stem, str) or not stem or any(c in stem for c in "/\\") or stem.startswith("."):
        raise ConfigError(f"name must be a plain file stem, got {stem!r}")
    roles = resolve_roles(options.task, source.output_names, options.outputs)
    preprocessing, notes = resolve_preprocessing(options.preprocessing, source.layout)
    preprocess = Preprocess(source.input_spec(), preprocessing, options.color)
    return OpenedSource(source, roles, preprocessing, preprocess, stem, tuple(notes))
