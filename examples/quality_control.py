"""On-device quality control: accept or reject each item photo with a classifier and a reject threshold.

An item is accepted only when the classifier's top class is one of the
``--accept`` classes with a score of at least ``--threshold``; anything
else (another class, or a confident-enough answer missing) is rejected and
logged. Results are appended as CSV to ``--log`` (written atomically).

    python examples/quality_control.py qc_classifier.tflite --source line_camera/ \
        --accept good --threshold 0.8 --log qc.csv
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import edgecv
from edgecv.sources import FrameReader, open_source
from edgecv.tasks.classifier import Classifier


def inspect(model: str, source: str, *, accept: list[str], threshold: float, labels: str | None = None,
            log: str | None = None) -> list[dict]:
    """Classify every frame; returns one row per item: source, label, score, verdict."""
    if not 0.0 < threshold <= 1.0:
        raise edgecv.ConfigError(f"--threshold must be in (0, 1], got {threshold}")
    rows = []
    with Classifier(model, labels=labels, top_k=1) as classifier:
        reader = FrameReader(open_source(source)).start()
        try:
            for frame in reader:
                top = classifier.classify(frame.image).top
                label = top.label if top is not None and top.label is not None else (str(top.index) if top else "")
                score = top.score if top is not None else 0.0
                verdict = "accept" if label in accept and score >= threshold else "reject"
                rows.append({"source": frame.source, "label": label, "score": round(score, 4), "verdict": verdict})
        finally:
            reader.stop()
    if log is not None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=["source", "label", "score", "verdict"])
        writer.writeheader()
        writer.writerows(rows)
        edgecv.atomic_write(Path(log), text.getvalue())
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--source", required=True, help="image, folder of images, video or camera")
    parser.add_argument("--accept", action="append", required=True, help="class name that passes (repeatable)")
    parser.add_argument("--threshold", type=float, default=0.8, help="minimum score to accept")
    parser.add_argument("--labels", help="label file, when the model carries none")
    parser.add_argument("--log", help="CSV file to write")
    args = parser.parse_args(argv)
    rows = inspect(args.model, args.source, accept=args.accept, threshold=args.threshold, labels=args.labels,
                   log=args.log)
    for row in rows:
        print(f"{row['verdict']:<7} {row['source']}: {row['label']} {row['score']:.3f}")
    rejected = sum(r["verdict"] == "reject" for r in rows)
    print(f"{len(rows)} items, {rejected} rejected")


if __name__ == "__main__":
    main()
