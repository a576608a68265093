"""Embedding distances and face-recognition style metrics, as pure functions on numpy arrays.

Distances: ``cosine`` is ``1 - cos(a, b)`` (0 same direction, 2 opposite);
``euclidean`` is the L2 distance. Smaller is more alike; a pair is accepted
("same identity") when ``distance <= threshold``.

- :func:`recall_at_k`: for each query, rank the reference *identities* by
  their nearest template; a hit at k when the query's own identity is among
  the k nearest. Queries whose identity has no reference are not counted.
  Ties are ranked by identity order of first appearance (deterministic).
- :func:`tar_at_far`: from genuine and impostor pair distances, for each
  target false-accept rate f with M impostor pairs, at most ``floor(f * M)``
  impostors may be accepted; the threshold is the largest one that keeps
  that (just below the ``floor(f * M) + 1``-th smallest impostor distance,
  :func:`edgecv.floats.just_below`), and TAR is the fraction of genuine pairs
  at or below it. When ``floor(f * M) >= M`` every pair is accepted and the
  threshold is the largest distance seen. With fewer than ``1 / f`` impostor
  pairs the figure is the FAR = 0 operating point; collect more pairs to
  measure small FARs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError
from .floats import just_below

__all__ = [
    "METRICS",
    "as_vector",
    "as_matrix",
    "cosine_distance",
    "euclidean_distance",
    "distance",
    "distance_matrix",
    "identity_distances",
    "recall_at_k",
    "pair_distances",
    "tar_at_far",
    "evaluate_embeddings",
]

METRICS = ("cosine", "euclidean")


def as_vector(value: Any) -> np.ndarray:
    """A 1-D float array from an :class:`Embedding` or array-like.

    Raises:
        ConfigError: not 1-D, empty, or not finite.
    """
    vec = np.asarray(getattr(value, "vector", value))
    if vec.ndim != 1 or vec.size == 0 or vec.dtype.kind not in "fiu":
        raise ConfigError(f"expected a 1-D numeric embedding vector, got shape {vec.shape} dtype {vec.dtype}")
    if not np.all(np.isfinite(vec)):
        raise ConfigError("embedding vector holds NaN or infinity")
    return vec


def as_matrix(vectors: Any) -> np.ndarray:
    """A 2-D ``(N, D)`` float64 array from a 2-D array or a sequence of vectors/Embeddings.

    Raises:
        ConfigError: ragged, empty or non-finite input.
    """
    if isinstance(vectors, np.ndarray) and vectors.ndim == 2:
        mat = vectors.astype(np.float64, copy=False)
    else:
        rows = [as_vector(v) for v in vectors]
        if not rows:
            raise ConfigError("no embedding vectors given")
        dims = {r.shape[0] for r in rows}
        if len(dims) != 1:
            raise ConfigError(f"embedding vectors have different lengths {sorted(dims)}")
        mat = np.stack(rows).astype(np.float64, copy=False)
    if mat.shape[0] == 0 or mat.shape[1] == 0:
        raise ConfigError(f"no embedding vectors given (shape {mat.shape})")
    if not np.all(np.isfinite(mat)):
        raise ConfigError("embedding vectors hold NaN or infinity")
    return mat


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {METRICS}, got {metric!r}")


def cosine_distance(a: Any, b: Any) -> float:
    """``1 - cos(a, b)``; 1.0 when either vector is all zeros.

    Raises:
        ConfigError: bad vectors or different lengths.
    """
    return distance(a, b, "cosine")


def euclidean_distance(a: Any, b: Any) -> float:
    """L2 distance between two vectors.

    Raises:
        ConfigError: bad vectors or different lengths.
    """
    return distance(a, b, "euclidean")


def distance(a: Any, b: Any, metric: str = "cosine") -> float:
    """Distance between two vectors under *metric* ("cosine" or "euclidean").

    Raises:
        ConfigError: bad vectors, different lengths, or unknown metric.
    """
    _check_metric(metric)
    va, vb = as_vector(a).astype(np.float64), as_vector(b).astype(np.float64)
    if va.shape != vb.shape:
        raise ConfigError(f"embedding lengths differ: {va.shape[0]} vs {vb.shape[0]}")
    if metric == "euclidean":
        return float(np.linalg.norm(va - vb))
    na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
    if na == 0.0 or nb == 0.0:
        return 1.0
    return float(1.0 - np.dot(va, vb) / (na * nb))


def _unit_rows(mat: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return np.divide(mat, norms, out=np.zeros_like(mat), where=norms > 0)


def distance_matrix(queries: Any, references: Any, metric: str = "cosine") -> np.ndarray:
    """``(Q, R)`` float64 distances between every query and every reference vector.

    Raises:
        ConfigError: bad vectors, different lengths, or unknown metric.
    """
    _check_metric(metric)
    q, r = as_matrix(queries), as_matrix(references)
    if q.shape[1] != r.shape[1]:
        raise ConfigError(f"embedding lengths differ: queries {q.shape[1]}, references {r.shape[1]}")
    if metric == "cosine":
        d = 1.0 - _unit_rows(q) @ _unit_rows(r).T
    else:
        sq = (q * q).sum(1)[:, None] + (r * r).sum(1)[None, :] - 2.0 * (q @ r.T)
        d = np.sqrt(np.maximum(sq, 0.0))
    return np.clip(d, 0.0, None, out=d)


def _identities(labels: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    order: dict[Any, int] = {}
    codes = np.array([order.setdefault(x, len(order)) for x in labels], np.int64)
    return list(order), codes


def identity_distances(distances: np.ndarray, reference_labels: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    """Per query, the distance to each identity's nearest template: ``(identities, (Q, I) array)``.

    Identities are in order of first appearance in *reference_labels*.

    Raises:
        ConfigError: label count does not match the reference axis.
    """
    d = np.asarray(distances, np.float64)
    if d.ndim != 2 or d.shape[1] != len(reference_labels):
        raise ConfigError(f"distances shape {d.shape} does not match {len(reference_labels)} reference labels")
    names, codes = _identities(reference_labels)
    out = np.full((d.shape[0], len(names)), np.inf)
    for i in range(len(names)):
        cols = d[:, codes == i]
        if cols.shape[1]:
            out[:, i] = cols.min(axis=1)
    return names, out


def recall_at_k(distances: np.ndarray, query_labels: Sequence[Any], reference_labels: Sequence[Any],
                ks: Iterable[int] = (1, 5, 10)) -> tuple[dict[int, float], int]:
    """Recall@k over identities and the number of queries counted (see module docstring).

    Args:
        distances: ``(Q, R)`` query-to-reference distances (use ``np.inf`` to exclude a pair, e.g. a query with itself).
        query_labels, reference_labels: identity of each query / reference row.

    Raises:
        ConfigError: shapes do not match, k below 1, or no query has a reference identity.
    """
    ks = [int(k) for k in ks]
    if any(k < 1 for k in ks):
        raise ConfigError(f"recall k values must be >= 1, got {ks}")
    d = np.asarray(distances, np.float64)
    if d.ndim != 2 or d.shape[0] != len(query_labels):
        raise ConfigError(f"distances shape {d.shape} does not match {len(query_labels)} query labels")
    names, per_identity = identity_distances(d, reference_labels)
    index = {n: i for i, n in enumerate(names)}
    ranks = []
    for row, label in zip(per_identity, query_labels):
        own = index.get(label)
        if own is None or not np.isfinite(row[own]):
            continue
        better = int(np.count_nonzero(row < row[own]))
        tied_before = int(np.count_nonzero(row[:own] == row[own]))
        ranks.append(better + tied_before)
    if not ranks:
        raise ConfigError("no query identity has a reference to be found; recall is undefined")
    r = np.asarray(ranks)
    return {k: float(np.count_nonzero(r < k)) / len(r) for k in ks}, len(r)


def pair_distances(distances: np.ndarray, query_labels: Sequence[Any], reference_labels: Sequence[Any]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Split a ``(Q, R)`` distance matrix into genuine (same label) and impostor distances.

    Entries that are ``np.inf`` (excluded pairs) are left out.

    Raises:
        ConfigError: shapes do not match the labels.
    """
    d = np.asarray(distances, np.float64)
    if d.shape != (len(query_labels), len(reference_labels)):
        raise ConfigError(f"distances shape {d.shape} does not match {len(query_labels)} x {len(reference_labels)} labels")
    _, codes = _identities(list(reference_labels) + list(query_labels))
    ref_codes, query_codes = codes[:len(reference_labels)], codes[len(reference_labels):]
    same = query_codes[:, None] == ref_codes[None, :]
    finite = np.isfinite(d)
    return d[same & finite], d[~same & finite]


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, fars: Iterable[float] = (1e-2, 1e-3)
               ) -> dict[float, tuple[float, float]]:
    """True-accept rate at each target false-accept rate, with its threshold (see module docstring).

    Returns:
        far -> (TAR, threshold), plain floats.

    Raises:
        ConfigError: no genuine or no impostor pairs, or a FAR outside (0, 1].
    """
    g = np.sort(np.asarray(genuine, np.float64).ravel())
    imp = np.sort(np.asarray(impostor, np.float64).ravel())
    if g.size == 0 or imp.size == 0:
        raise ConfigError(f"TAR@FAR needs genuine and impostor pairs; got {g.size} genuine, {imp.size} impostor")
    out: dict[float, tuple[float, float]] = {}
    for far in fars:
        f = float(far)
        if not 0.0 < f <= 1.0:
            raise ConfigError(f"FAR targets must be in (0, 1], got {far!r}")
        allowed = int(np.floor(f * imp.size + 1e-9))
        if allowed >= imp.size:
            threshold = float(max(g[-1], imp[-1]))
        else:
            threshold = just_below(float(imp[allowed]))
        accepted = int(np.searchsorted(g, threshold, side="right"))
        out[f] = (accepted / g.size, threshold)
    return out


def evaluate_embeddings(vectors: Any, names: Sequence[Any], *, metric: str = "cosine",
                        ks: Iterable[int] = (1, 5, 10), fars: Iterable[float] = (1e-2, 1e-3)):
    """Leave-one-out evaluation of one labelled set: every vector against all the others.

    Each unordered pair counts once for TAR@FAR; a vector is never matched with itself.

    Returns:
        :class:`edgecv.tasks.results.EmbeddingEvaluation`.

    Raises:
        ConfigError: bad input, or no genuine/impostor pairs.
    """
    from .tasks.results import EmbeddingEvaluation

    mat = as_matrix(vectors)
    labels = list(names)
    if len(labels) != mat.shape[0]:
        raise ConfigError(f"{mat.shape[0]} vectors but {len(labels)} names")
    d = distance_matrix(mat, mat, metric)
    np.fill_diagonal(d, np.inf)
    recall, counted = recall_at_k(d, labels, labels, ks)
    upper = np.triu(np.ones(d.shape, bool), k=1)
    _, codes = _identities(labels)
    same = codes[:, None] == codes[None, :]
    genuine, impostor = d[upper & same], d[upper & ~same]
    return EmbeddingEvaluation(recall, tar_at_far(genuine, impostor, fars), counted, int(genuine.size),
                               int(impostor.size), metric)
