"""A gallery of enrolled identities: identify, verify, evaluate, save and load.

Files are a single ``.npz`` (read with ``allow_pickle=False``) holding
``vectors`` (N x D float32), ``owners`` (N int32, index into the names)
and ``meta`` (UTF-8 JSON as uint8: format, version, metric, dim, names).
Nothing is pickled; files are written atomically.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..checks import check_number
from ..errors import ConfigError
from ..metrics_embedding import (
    METRICS,
    as_vector,
    distance,
    distance_matrix,
    identity_distances,
    pair_distances,
    recall_at_k,
    tar_at_far,
)
from .results import EmbeddingEvaluation

__all__ = ["Gallery", "GALLERY_FORMAT"]

GALLERY_FORMAT = "edgecv.gallery"
GALLERY_VERSION = 1
MAX_GALLERY_FILE_BYTES = 1 << 31


class Gallery:
    """Enrolled identities, each with one or more template vectors.

    Args:
        embedder: an :class:`edgecv.tasks.Embedder` used when images (not vectors) are given.
        metric: "cosine" (``1 - cos``) or "euclidean"; accept when ``distance <= threshold``.

    Not thread-safe for concurrent enroll/identify; reads from several threads are fine
    when nobody enrolls (the embedder itself is one-per-thread).
    """

    def __init__(self, embedder: Any = None, *, metric: str = "cosine") -> None:
        if metric not in METRICS:
            raise ConfigError(f"metric must be one of {METRICS}, got {metric!r}")
        self.embedder = embedder
        self.metric = metric
        self._names: list[str] = []
        self._vectors = np.zeros((0, 0), np.float32)
        self._owners = np.zeros(0, np.int32)

    # -- contents ------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Enrolled identities in enrollment order."""
        return tuple(self._names)

    @property
    def dim(self) -> int | None:
        return int(self._vectors.shape[1]) if self._vectors.shape[0] else None

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def templates(self, name: str) -> np.ndarray:
        """Copy of the template vectors of *name* (K x D float32).

        Raises:
            ConfigError: unknown name.
        """
        return self._vectors[self._owners == self._index_of(name)].copy()

    def _index_of(self, name: str) -> int:
        try:
            return self._names.index(name)
        except ValueError:
            raise ConfigError(f"{name!r} is not enrolled; enrolled: {self._names[:10]}") from None

    # -- inputs ----------------------------------------------------------------
    def _embed(self, item: Any, color: str) -> np.ndarray:
        if isinstance(item, (str, os.PathLike)) or (isinstance(item, np.ndarray) and item.dtype == np.uint8
                                                     and item.ndim in (2, 3)):
            if self.embedder is None:
                raise ConfigError("an image was given but this Gallery has no embedder; create it with "
                                  "Gallery(embedder=Embedder(...)) or pass embedding vectors")
            return np.asarray(self.embedder.embed(item, color=color).vector, np.float32)
        return as_vector(item).astype(np.float32)

    def _items(self, images_or_vectors: Any, color: str) -> np.ndarray:
        if isinstance(images_or_vectors, np.ndarray) and images_or_vectors.dtype != np.uint8:
            if images_or_vectors.ndim == 1:
                rows = [as_vector(images_or_vectors).astype(np.float32)]
            elif images_or_vectors.ndim == 2:
                rows = [as_vector(r).astype(np.float32) for r in images_or_vectors]
            else:
                raise ConfigError(f"vectors must be 1-D or 2-D (N x D), got shape {images_or_vectors.shape}")
        elif isinstance(images_or_vectors, (str, os.PathLike, np.ndarray)) or hasattr(images_or_vectors, "vector"):
            rows = [self._embed(images_or_vectors, color)]
        else:
            rows = [self._embed(x, color) for x in images_or_vectors]
        if not rows:
            raise ConfigError("nothing to enroll: give at least one image or vector")
        mat = np.stack(rows)
        if self.dim is not None and mat.shape[1] != self.dim:
            raise ConfigError(f"vectors have length {mat.shape[1]} but the gallery holds length {self.dim}")
        return mat

    def _query(self, query: Any, color: str) -> np.ndarray:
        vec = self._embed(query, color)
        if self.dim is not None and vec.shape[0] != self.dim:
            raise ConfigError(f"query has length {vec.shape[0]} but the gallery holds length {self.dim}")
        return vec

    # -- enrolment -------------------------------------------------------------
    def enroll(self, name: str, images_or_vectors: Any, *, color: str = "bgr") -> int:
        """Add templates for *name* (new or existing identity); return how many were added.

        Args:
            images_or_vectors: one image (array or path), one vector or Embedding,
                an (N, D) array, or an iterable of any of those.

        Raises:
            ConfigError: empty name, nothing given, wrong vector length, or images without an embedder.
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"identity name must be a non-empty string, got {name!r}")
        mat = self._items(images_or_vectors, color)
        if name not in self._names:
            self._names.append(name)
        owner = self._names.index(name)
        self._vectors = mat if self._vectors.shape[0] == 0 else np.concatenate([self._vectors, mat])
        self._owners = np.concatenate([self._owners, np.full(mat.shape[0], owner, np.int32)])
        return int(mat.shape[0])

    def remove(self, name: str) -> None:
        """Forget *name* and its templates.

        Raises:
            ConfigError: unknown name.
        """
        idx = self._index_of(name)
        keep = self._owners != idx
        self._vectors = self._vectors[keep]
        owners = self._owners[keep]
        self._owners = np.where(owners > idx, owners - 1, owners).astype(np.int32)
        del self._names[idx]
        if self._vectors.shape[0] == 0:
            self._vectors = np.zeros((0, 0), np.float32)

    # -- queries ---------------------------------------------------------------
    def _check_threshold(self, threshold: float) -> float:
        return check_number(threshold, "threshold", minimum=0, finite=False, expected="a non-negative distance")

    def nearest(self, query: Any, k: int = 5, *, color: str = "bgr") -> list[tuple[str, float]]:
        """The *k* nearest identities as ``(name, distance)``, nearest first (distance to the closest template).

        Raises:
            ConfigError: empty gallery or bad query.
        """
        if not self._names:
            raise ConfigError("the gallery is empty; enroll identities first")
        vec = self._query(query, color)
        d = distance_matrix(vec[None, :], self._vectors, self.metric)
        names = [self._names[i] for i in self._owners.tolist()]
        order_names, per_identity = identity_distances(d, names)
        row = per_identity[0]
        order = sorted(range(len(order_names)), key=lambda i: (row[i], i))[:k]
        return [(order_names[i], float(row[i])) for i in order]

    def identify(self, query: Any, threshold: float, *, color: str = "bgr") -> tuple[str, float] | None:
        """The nearest identity as ``(name, distance)`` if ``distance <= threshold``, else None.

        Args:
            query: a vector, an Embedding, or an image (needs the embedder).

        Raises:
            ConfigError: empty gallery, bad query or threshold.
        """
        limit = self._check_threshold(threshold)
        best = self.nearest(query, 1, color=color)[0]
        return best if best[1] <= limit else None

    def distance(self, a: Any, b: Any, *, color: str = "bgr") -> float:
        """Distance between two vectors/Embeddings/images under this gallery's metric."""
        return distance(self._query(a, color), self._query(b, color), self.metric)

    def verify(self, a: Any, b: Any, threshold: float, *, color: str = "bgr") -> bool:
        """True when *a* and *b* are the same identity: ``distance(a, b) <= threshold``.

        Raises:
            ConfigError: bad inputs or threshold.
        """
        limit = self._check_threshold(threshold)
        return self.distance(a, b, color=color) <= limit

    # -- evaluation ------------------------------------------------------------
    def evaluate(self, vectors: Any, names: Sequence[str], *, ks: Iterable[int] = (1, 5, 10),
                 fars: Iterable[float] = (1e-2, 1e-3)) -> EmbeddingEvaluation:
        """Score labelled probe vectors against the enrolled templates.

        recall@k: fraction of probes whose identity is enrolled and among the
        k nearest identities (probes of identities not enrolled are not counted).
        TAR@FAR: over all probe x template pairs (genuine: same name), see
        :func:`edgecv.metrics_embedding.tar_at_far`.

        Raises:
            ConfigError: empty gallery, mismatched inputs, or no genuine/impostor pairs.
        """
        if not self._names:
            raise ConfigError("the gallery is empty; enroll identities first (or use "
                              "edgecv.metrics_embedding.evaluate_embeddings for a leave-one-out score)")
        probes = self._items(vectors, "bgr")
        labels = list(names)
        if len(labels) != probes.shape[0]:
            raise ConfigError(f"{probes.shape[0]} vectors but {len(labels)} names")
        d = distance_matrix(probes, self._vectors, self.metric)
        ref_labels = [self._names[i] for i in self._owners.tolist()]
        recall, counted = recall_at_k(d, labels, ref_labels, ks)
        genuine, impostor = pair_distances(d, labels, ref_labels)
        return EmbeddingEvaluation(recall, tar_at_far(genuine, impostor, fars), counted, int(genuine.size),
                                   int(impostor.size), self.metric)

    # -- files -------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the gallery to *path* (one .npz, atomically); an existing file only with ``overwrite=True``.

        Raises:
            ConfigError: empty gallery, an unwritable destination, or one that exists and ``overwrite`` is False.
        """
        if not self._names:
            raise ConfigError("the gallery is empty; nothing to save")
        meta = {"format": GALLERY_FORMAT, "version": GALLERY_VERSION, "metric": self.metric, "dim": self.dim,
                "names": list(self._names)}
        buffer = io.BytesIO()
        np.savez(buffer, vectors=self._vectors.astype(np.float32), owners=self._owners.astype(np.int32),
                 meta=np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8))
        return atomic_write(path, buffer.getvalue(), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, *, embedder: Any = None) -> Gallery:
        """Read a gallery written by :meth:`save` (no pickle).

        Raises:
            ConfigError: missing, unreadable, corrupt or foreign file.
        """
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"gallery file {p} does not exist")
        if p.stat().st_size > MAX_GALLERY_FILE_BYTES:
            raise ConfigError(f"gallery file {p} is larger than {MAX_GALLERY_FILE_BYTES} bytes")
        _check_npz_members(p, ("vectors", "owners", "meta"))
        try:
            with np.load(p, allow_pickle=False) as data:
                vectors, owners, raw = data["vectors"], data["owners"], data["meta"]
                meta = json.loads(raw.tobytes().decode("utf-8"))
        except (OSError, ValueError, KeyError, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as exc:
            raise ConfigError(f"{p} is not a readable edgecv gallery ({exc.__class__.__name__}: {exc}); "
                              "write it with Gallery.save") from exc
        except RecursionError as exc:  # metadata JSON nested thousands deep
            raise ConfigError(f"{p}: the gallery metadata is nested too deeply to be a gallery's") from exc
        if not isinstance(meta, dict) or meta.get("format") != GALLERY_FORMAT:
            raise ConfigError(f"{p} is not an edgecv gallery file")
        if not isinstance(meta.get("version"), int) or meta["version"] > GALLERY_VERSION:
            raise ConfigError(f"{p} has gallery version {meta.get('version')!r}; upgrade edgecv to read it")
        names = meta.get("names")
        if (not isinstance(names, list) or not all(isinstance(n, str) and n for n in names)
                or len(set(names)) != len(names)):
            raise ConfigError(f"{p}: corrupt identity names")
        if (vectors.ndim != 2 or vectors.dtype != np.float32 or owners.shape != (vectors.shape[0],)
                or owners.dtype.kind not in "iu" or meta.get("dim") != vectors.shape[1]
                or (owners.size and (int(owners.min()) < 0 or int(owners.max()) >= len(names)))
                or not np.all(np.isfinite(vectors))):
            raise ConfigError(f"{p}: vectors, owners and names do not agree; the file is corrupt")
        if meta.get("metric") not in METRICS:
            raise ConfigError(f"{p}: unknown metric {meta.get('metric')!r}")
        gallery = cls(embedder, metric=meta["metric"])
        gallery._names = list(names)
        gallery._vectors = np.ascontiguousarray(vectors)
        gallery._owners = owners.astype(np.int32)
        return gallery


def _check_npz_members(path: Path, names: tuple[str, ...]) -> None:
    """Refuse anything but an npz whose arrays are plain and no larger than their stored bytes claim.

    np.load would otherwise return a bare array for a ``.npy`` file, and allocate whatever shape an
    ``.npy`` header claims before reading a single data byte.

    Raises:
        ConfigError: not a zip archive, a member missing, an object dtype, or a shape bigger than its data.
    """
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"{path} is not a readable edgecv gallery (not an .npz archive); write it with Gallery.save")
    try:
        with zipfile.ZipFile(path) as archive:
            for name in names:
                try:
                    info = archive.getinfo(name + ".npy")
                except KeyError:
                    raise ConfigError(f"{path} is not an edgecv gallery (no {name!r} array)") from None
                with archive.open(info) as member:
                    major, _ = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if major == 1
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                if dtype.hasobject:
                    raise ConfigError(f"{path}: array {name!r} holds Python objects; galleries never do")
                claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if max(claimed, info.file_size) > MAX_GALLERY_FILE_BYTES:   # compressed members can claim anything
                    raise ConfigError(f"{path}: array {name!r} claims {max(claimed, info.file_size)} bytes, more "
                                      f"than the {MAX_GALLERY_FILE_BYTES}-byte gallery limit; the file is corrupt")
                if claimed > info.file_size:
                    raise ConfigError(f"{path}: array {name!r} claims {claimed} bytes but stores {info.file_size}; "
                                      "the file is corrupt")
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ConfigError(f"{path} is not a readable edgecv gallery ({exc.__class__.__name__}: {exc})") from exc
