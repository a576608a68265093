"""Worker process: load and invoke model files one by one, reporting each outcome as it goes.

Run as ``python worker.py MUTANTS RESULTS``: MUTANTS is a text file with one
JSON :class:`~tests.reliability.mutations.Mutant` recipe per line. The worker
writes each mutant to its path, checks it and deletes it again. For each the worker appends ``B <i>`` to
RESULTS before touching it, ``I <i> <loops>`` once the model loaded and is
about to be invoked (``loops`` is 1 when the graph holds a loop op: WHILE,
Loop, Scan, whose trip count a mutated constant can make astronomically
large), and ``R <i> <json>`` after: one newline-terminated record each, written whole
(:func:`write_record`); the harness reads only records whose newline is there. If the
process dies, the last ``B`` without an ``R`` names the file that killed it. TensorFlow is blocked so the runtime under test is the one a
device has (ai_edge_litert, tflite_runtime or onnxruntime).
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import sys
import traceback

#: Address-space cap for the worker, so a runaway allocation fails here instead of starving the machine.
MEMORY_LIMIT_BYTES = 6 << 30


_LOOP_OPS = {"WHILE", "STABLEHLO_WHILE", "Loop", "Scan"}


def has_loop(model) -> bool:
    """True when the loaded model's graph holds a loop op."""
    data = model.path.read_bytes()
    if model.format == "tflite":
        from edgecv.formats.tflite import parse_tflite

        return bool(_LOOP_OPS & set(parse_tflite(data).op_names()))
    from edgecv.formats.onnx import parse_onnx

    return bool(_LOOP_OPS & set(parse_onnx(data).op_types()))


def check_file(path: str, report=lambda loops: None) -> tuple[str, str]:
    """Load *path*, zero its inputs, invoke once and read every output.

    ``report(loops)`` is called between loading and invoking.

    Returns:
        ``("ok", "")``, ``("edgecv", "ClassName: message")`` or ``("other", "ClassName: message ...")``.
    """
    import numpy as np

    import edgecv

    try:
        with edgecv.load(path, num_threads=1) as model:
            report(has_loop(model))
            for i in range(len(model.inputs)):
                model.input_buffer(i)[...] = 0
            with np.errstate(all="ignore"):
                for out in model.invoke():
                    float(np.add.reduce(np.asarray(out), axis=None, dtype=np.float64))  # read it, no copy
        return "ok", ""
    except edgecv.EdgeCVError as exc:
        return "edgecv", f"{type(exc).__name__}: {str(exc)[:300]}"
    except BaseException as exc:  # noqa: BLE001 - anything else is exactly what this test hunts
        tb = traceback.format_exc(limit=6)
        return "other", f"{type(exc).__name__}: {str(exc)[:300]}\n{tb[-1500:]}"


def write_record(fd: int, text: str) -> None:
    """Append one record (*text*, which holds no newline) and its terminating newline.

    ``os.write`` may write less than asked; the rest follows until the newline is written, and the
    harness reads a record only once its newline is there (``harness.complete_records``).
    """
    data = (text.replace("\n", " ") + "\n").encode("utf-8")
    while data:
        data = data[os.write(fd, data):]


def main(argv: list[str]) -> int:
    from tests.reliability.mutations import Mutant, mutant_bytes

    file_list, results = argv[1], argv[2]
    faulthandler.enable()
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    except (ValueError, OSError):
        pass
    with open(file_list, encoding="utf-8") as f:
        mutants = [Mutant.from_json(json.loads(line)) for line in f if line.strip()]
    fd = os.open(results, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for i, m in enumerate(mutants):
            write_record(fd, f"B {i}")
            m.path.write_bytes(mutant_bytes(m))
            try:
                outcome, detail = check_file(str(m.path),
                                             lambda loops, i=i: write_record(fd, f"I {i} {int(loops)}"))
            finally:
                m.path.unlink()
            write_record(fd, f"R {i} {json.dumps([outcome, detail])}")
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    # never fall back to tensorflow.lite here; only in the worker process (importing this module, as the
    # record tests do, must not block TensorFlow for a whole pytest session)
    sys.modules["tensorflow"] = None  # type: ignore[assignment]
    sys.exit(main(sys.argv))
