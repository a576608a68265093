"""Which artifacts to build: from a target's recipes (``targets.recipe``) or from explicit precisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecv.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from .options import ConvertOptions

__all__ = ["Plan", "PlanSet", "plan_artifacts", "plan_conversion", "name_plans", "PRECISIONS", "FORMATS", "IO_DTYPES"]

PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
FORMATS = ("tflite", "onnx")
IO_DTYPES = ("float32", "uint8", "int8")


@dataclass(frozen=True)
class Plan:
    """One artifact to build.

    Attributes:
        format: "tflite" or "onnx".
        precision: "fp32", "fp16", "dynamic" or "int8".
        io_dtype: "float32", "uint8" or "int8" (only TFLite int8 has integer I/O).
        edgetpu_compile: also compile it with edgetpu_compiler.
        publish: write it to the output folder (False: built only as the float reference).
    """

    format: str
    precision: str
    io_dtype: str = "float32"
    edgetpu_compile: bool = False
    publish: bool = True

    @property
    def needs_calibration(self) -> bool:
        return self.precision == "int8"

    def file_name(self, stem: str, *, with_io: bool = False) -> str:
        """``<stem>_<precision>[_<io>io].<format>``, e.g. ``clf_int8.tflite``."""
        io = f"_{self.io_dtype}io" if with_io else ""
        return f"{stem}_{self.precision}{io}.{self.format}"


def _as_list(value: str | Sequence[str] | None, name: str, allowed: tuple[str, ...]) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, (str, Sequence, frozenset, set)):
        raise ConfigError(f"{name} must be a name or a list of names, got {type(value).__name__}; "
                          f"choose from {', '.join(allowed)}")
    items = [value] if isinstance(value, str) else list(value)
    if not items:
        raise ConfigError(f"{name} must not be empty; choose from {', '.join(allowed)}")
    for item in items:
        if item not in allowed:
            raise ConfigError(f"unknown {name[:-1] if name.endswith('s') else name} {item!r}"
                              f"{did_you_mean(str(item), allowed)}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def _check_io(plans: list[Plan], io_dtype: str | None) -> list[Plan]:
    if io_dtype is None:
        return plans
    if io_dtype not in IO_DTYPES:
        raise ConfigError(f"io_dtype {io_dtype!r} is not one of {IO_DTYPES}{did_you_mean(str(io_dtype), IO_DTYPES)}")
    out = []
    for p in plans:
        if p.format == "tflite" and p.precision == "int8":
            out.append(Plan(p.format, p.precision, io_dtype, p.edgetpu_compile, p.publish))
        elif io_dtype != "float32":
            raise ConfigError(
                f"{p.format} {p.precision} does not support io_dtype={io_dtype!r}: only full-integer TFLite int8 has "
                "uint8/int8 inputs and outputs (ONNX QDQ int8, fp16, dynamic and fp32 keep float32 I/O); drop "
                "io_dtype or ask for formats='tflite', precision='int8'")
        else:
            out.append(p)
    return out


def plan_artifacts(target: Any, precision: str | Sequence[str] | None, formats: str | Sequence[str] | None,
                   io_dtype: str | None, *, source_is_onnx: bool) -> tuple[list[Plan], str | None, list[str]]:
    """Decide the artifacts.

    With a target: ``targets.recipe(target, p)`` for each requested precision
    (all of the target's when None), optionally narrowed to *formats*.
    Without (``target=None``): every requested precision (default all four)
    in every requested format (default both; ONNX only for ONNX sources; TFLite from
    ONNX is translated by onnx2tf, :mod:`converters.onnx_translate`);
    full-integer TFLite int8 gets uint8 I/O unless *io_dtype* says otherwise.

    Returns:
        ``(plans, target name or None, notes)``.

    Raises:
        ConfigError: unknown precision/format/io_dtype, or a combination the
            target or the format does not support.
        UnknownTargetError: unknown target name.
        BackendNotAvailable: TFLite output from an ONNX source and onnx2tf is not installed
            (:func:`converters.onnx_translate.require_onnx2tf`).
    """
    precisions = _as_list(precision, "precision", PRECISIONS)
    wanted_formats = _as_list(formats, "formats", FORMATS)
    notes: list[str] = []
    if target is None:
        fmts = wanted_formats or (["onnx"] if source_is_onnx else list(FORMATS))
        plans = [Plan(f, p, "uint8" if (f == "tflite" and p == "int8") else "float32")
                 for f in fmts for p in (precisions or list(PRECISIONS))]
        target_name = None
    else:
        import targets

        t = targets.resolve(target)
        target_name = t.name
        recipes = []
        for p in precisions or [None]:
            recipes += targets.recipe(t, p, wanted_formats)
        plans = [Plan(r.format, r.precision, r.io_dtype, bool(r.edgetpu_compile)) for r in recipes
                 if wanted_formats is None or r.format in wanted_formats]
        plans.sort(key=lambda pl: t.formats.index(pl.format))
    if source_is_onnx and any(p.format == "tflite" for p in plans):
        from .onnx_translate import require_onnx2tf

        require_onnx2tf()                         # the graph is translated by onnx2tf: refuse its absence before any work
    plans = _check_io(plans, io_dtype)
    if not plans:
        raise ConfigError("nothing to build: the requested precisions and formats leave no artifact")
    unique: list[Plan] = []
    for p in plans:
        if p not in unique:
            unique.append(p)
    return unique, target_name, notes


@dataclass(frozen=True)
class PlanSet:
    """The artifacts of one conversion with their file names and destinations.

    Attributes:
        plans: every artifact to build, the float reference first (when there is one).
        reference: the fp32 artifact of the first format that the others are validated against, or None
            (no fp32 asked for and nothing to validate).
        names: plan -> file name (the reference too, even when it is not published).
        destinations: published plan -> final path in the output folder.
        report_path: where ``<stem>_report.json`` goes.
        output_dir: the output folder.
        target_name: the target profile's name, or None.
        notes: what planning left out, for the report.
    """

    plans: tuple[Plan, ...]
    reference: Plan | None
    names: Mapping[Plan, str]
    destinations: Mapping[Plan, Path]
    report_path: Path
    output_dir: Path
    target_name: str | None
    notes: tuple[str, ...] = ()

    @property
    def formats(self) -> tuple[str, ...]:
        """The formats built, in preference order (the target's order)."""
        return tuple(dict.fromkeys(p.format for p in self.plans))

    def edgetpu_destinations(self) -> list[Path]:
        """Where the Edge TPU builds land: ``<name>_edgetpu.tflite`` (edgetpu_compiler's naming) beside their plan's."""
        return [d.with_name(d.stem + "_edgetpu.tflite") for p, d in self.destinations.items() if p.edgetpu_compile]


def plan_conversion(options: ConvertOptions) -> tuple[list[Plan], str | None, list[str]]:
    """:func:`plan_artifacts` for the target, precisions, formats and I/O type of *options*.

    Raises:
        ConfigError, UnknownTargetError, BackendNotAvailable: see :func:`plan_artifacts`.
    """
    return plan_artifacts(options.target, options.precision, options.formats, options.io_dtype,
                          source_is_onnx=options.source_is_onnx)


def name_plans(plans: Sequence[Plan], target_name: str | None, notes: Sequence[str], *, stem: str,
               output_dir: Path, options: ConvertOptions) -> PlanSet:
    """Put the float reference first (adding an unpublished fp32 one when validating needs it), name every file
    and refuse destinations that exist already.

    Names are ``<stem>_<precision>.<format>``; plans whose names would clash get ``_<io>io`` too.

    Raises:
        ConfigError: a destination (an Edge TPU build's, or the report when written, included) exists and
            ``options.overwrite`` is False.
    """
    first_format = plans[0].format
    reference = next((p for p in plans if p.format == first_format and p.precision == "fp32"), None)
    if reference is None and options.validation is not None:
        reference = Plan(first_format, "fp32", "float32", publish=False)
        plans = [reference, *plans]
    elif reference is not None:
        plans = [reference, *[p for p in plans if p is not reference]]
    names = _file_names([p for p in plans if p.publish], stem)
    if reference is not None:
        names[reference] = names.get(reference, reference.file_name(stem))
    destinations = {p: output_dir / names[p] for p in plans if p.publish}
    plan_set = PlanSet(tuple(plans), reference, names, destinations, output_dir / f"{stem}_report.json", output_dir,
                       target_name, tuple(notes))
    if not options.overwrite:
        _refuse_existing([*destinations.values(), *plan_set.edgetpu_destinations(),
                          *([plan_set.report_path] if options.write_report else [])])
    return plan_set


def _refuse_existing(paths: list[Path]) -> None:
    existing = [str(d) for d in paths if d.exists()]
    if existing:
        raise ConfigError(f"{existing[0]} already exists; pass overwrite=True (CLI: --force) to replace it"
                          + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""))


def _file_names(plans: list[Plan], stem: str) -> dict[Plan, str]:
    plain = {p: p.file_name(stem) for p in plans}
    clashes = {n for n in plain.values() if list(plain.values()).count(n) > 1}
    return {p: (p.file_name(stem, with_io=True) if plain[p] in clashes else plain[p]) for p in plans}
