"""The label-file rule every task follows, and the checks of a label list against a model.

One rule for label files (``read_labels`` / ``parse_labels`` in :mod:`edgecv.manifest` read them):

- one label per line (or ``index label`` / ``index: label`` lines, placed at their index);
  UTF-8, ``\\r\\n`` or ``\\n``; each line stripped of surrounding spaces;
- trailing blank lines are ignored; every other line is a label, in order, blank ones included;
- ``???`` is a placeholder (the COCO label-map convention for unused class ids): such a class
  has no label (``None`` in results). A list with one more row than the model has classes,
  whose first row is ``???``, carries the background row the model's class ids leave out: that
  row is dropped;
- suspicious lines are warned about (the ``edgecv`` log and ``model.warnings``), never
  silently fixed: a blank line between labels, and lines that read like prose (more than
  five words, more than 60 characters, or a sentence ending in ``.``, ``!`` or ``?``);
- the count must fit the model (see :func:`edgecv.tasks.base.resolve_labels`); a list with
  no labels at all is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["PLACEHOLDER", "is_placeholder", "suspicious_labels", "drop_background_placeholder"]

#: the COCO label-map placeholder for a class id without a class
PLACEHOLDER = "???"
_MAX_WORDS = 5
_MAX_CHARS = 60


def is_placeholder(label: str | None) -> bool:
    """Whether *label* is the ``???`` placeholder (a class id without a class)."""
    return label is not None and label.strip() == PLACEHOLDER


def _prose(label: str) -> bool:
    words = label.split()
    if len(words) > _MAX_WORDS or len(label) > _MAX_CHARS:
        return True
    return len(words) >= 3 and label.rstrip()[-1:] in ".!?" and not is_placeholder(label)


def suspicious_labels(labels: Sequence[str], source: str) -> list[str]:
    """Warnings (one line each) for the rows of *labels* that do not look like labels.

    Args:
        labels: the rows as read (trailing blank lines already dropped).
        source: how to name where they came from, e.g. "label file coco.txt".
    """
    out = []
    blank = [i for i, label in enumerate(labels) if not label.strip()]
    if blank:
        rows = ", ".join(str(i + 1) for i in blank[:5]) + (" ..." if len(blank) > 5 else "")
        out.append(f"{source}: line(s) {rows} are blank between labels: those classes get an empty label "
                   "(remove the lines, or write ??? for an unused class id)")
    prose = [i for i, label in enumerate(labels) if label.strip() and _prose(label)]
    if prose:
        i = prose[0]
        more = f" (and {len(prose) - 1} more)" if len(prose) > 1 else ""
        out.append(f"{source}: line {i + 1} reads like prose, not a label: {labels[i][:60]!r}{more}; a label file "
                   "holds one class name per line and nothing else")
    return out


def drop_background_placeholder(labels: tuple[str, ...], num_classes: int | None) -> tuple[str, ...] | None:
    """*labels* without their first row when it is a ``???`` background row the model's classes lack, else None.

    That is the 91-row COCO label map used with a detector whose 90 class ids start at the first
    real class (TFLite_Detection_PostProcess numbering).
    """
    if num_classes is not None and len(labels) == num_classes + 1 and labels and is_placeholder(labels[0]):
        return labels[1:]
    return None
