"""The fuzz corpus: every fixture model and every tiny in-process model, mutated with a fixed seed."""

from __future__ import annotations

from pathlib import Path

from .mutations import Mutant, plan_corpus
from .tiny_models import EXTERNAL_DATA_NAME, external_weights, onnx_models, tflite_models

__all__ = ["source_models", "build_corpus", "DEFAULT_SEED", "DEFAULT_PER_SOURCE"]

DEFAULT_SEED = 20240509

#: Mutants per source model and kind at scale 1 (the test); the bench script multiplies them.
#: The well-formed-but-wrong kinds took their share from flip_header/flip_structure, so the test keeps its size.
DEFAULT_PER_SOURCE = {
    "tflite": {"truncate": 6, "flip_header": 4, "flip_structure": 8, "flip_body": 4, "truncate_few": 1,
               "retype_input": 1, "retype_output": 2, "reorder_outputs": 1, "duplicate_output": 1,
               "options_nonfinite": 2},
    "onnx": {"truncate": 8, "flip_header": 8, "flip_structure": 12, "flip_body": 4, "truncate_few": 1,
             "retype_input": 1, "retype_output": 2, "reorder_outputs": 1, "duplicate_output": 1},
}


def source_models(fixtures: Path | None, folder: Path) -> dict[str, dict[str, Path]]:
    """``{"tflite": {name: path}, "onnx": {name: path}}``: every fixture model (if the folder exists) and
    every tiny model, the latter written into *folder* (with the external data the ONNX one needs)."""
    found: dict[str, dict[str, Path]] = {"tflite": {}, "onnx": {}}
    if fixtures is not None:
        for fmt in found:
            for path in sorted(fixtures.rglob(f"*.{fmt}")):
                found[fmt][path.stem] = path
    folder.mkdir(parents=True, exist_ok=True)
    for fmt, models in (("tflite", tflite_models()), ("onnx", onnx_models())):
        for name, data in models.items():
            path = folder / f"{name}.{fmt}"
            path.write_bytes(data)
            found[fmt][name] = path
    (folder / EXTERNAL_DATA_NAME).write_bytes(external_weights())
    return found


def build_corpus(out_dir: Path, fixtures: Path | None, *, seed: int = DEFAULT_SEED, scale: int = 1,
                 random_files: int = 10, zero_files: int = 2) -> list[Mutant]:
    """Plan the corpus under *out_dir* (sources in ``sources/``, mutants in one subfolder per format).

    ``scale`` multiplies the per-source counts (the bench script uses more files than the test). The
    mutants themselves are written by the workers, one at a time (see :func:`mutations.mutant_bytes`).
    """
    sources = source_models(fixtures, out_dir / "sources")
    mutants: list[Mutant] = []
    for offset, fmt in enumerate(("tflite", "onnx")):
        per_source = {k: v * scale for k, v in DEFAULT_PER_SOURCE[fmt].items()}
        folder = out_dir / fmt
        mutants += plan_corpus(sources[fmt], folder, fmt=fmt, seed=seed + offset, per_source=per_source,
                               random_files=random_files * scale, zero_files=zero_files)
        if fmt == "onnx":
            (folder / EXTERNAL_DATA_NAME).write_bytes(external_weights())
    return mutants
