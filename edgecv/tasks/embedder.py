"""Image embeddings (FaceNet-style): one float32 vector per image, unit length when normalised."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ConfigError, IncompatibleModelError
from ..heads import EmbeddingHead
from ..manifest import Preprocessing
from ..metrics_embedding import cosine_distance, euclidean_distance
from ..model import Model
from .base import Task, describe_outputs, find_output
from .family import check_not_probabilities, probe_image
from .results import Embedding

__all__ = ["Embedder", "cosine_distance", "euclidean_distance"]


class Embedder(Task):
    """Turn images into embedding vectors.

    The input may be NHWC or NCHW (from the input shape, or ``preprocessing={"layout": ...}``).
    The output must hold one vector: a shape with a single dimension above 1
    (``[1, D]``, ``[1, 1, 1, D]``, ``[1, D, 1, 1]``).

    Args:
        model_or_path: an :class:`edgecv.Model` or a model file path.
        l2_normalize: scale each vector to unit L2 length (an all-zero vector stays zero).
        output: output tensor name or role, when the model has several outputs and no manifest role "embedding".
        target, backend, num_threads, preprocessing: as for :class:`edgecv.tasks.Classifier`.

    ``embed(image, color="bgr")`` returns an :class:`Embedding` whose vector
    is a new float32 array per call.

    Not thread-safe: one Embedder per thread.

    A model that does not state its task is run once on a probe image at construction: an
    output of class probabilities (a classifier) is refused (see :mod:`edgecv.tasks.family`).

    Raises (at construction):
        IncompatibleModelError: no single-vector output (expected vs found outputs named), or an
            output of class probabilities.
        ConfigError: a float input whose mean/std neither the model nor the arguments state.
    """

    task_name = "embedding"
    task_title = "Embedder"

    def __init__(self, model_or_path: Model | str | os.PathLike, *, l2_normalize: bool = True,
                 output: str | int | None = None, target: Any = None, backend: str | None = None,
                 num_threads: int | None = None, preprocessing: Preprocessing | dict | None = None) -> None:
        if not isinstance(l2_normalize, bool):
            raise ConfigError(f"l2_normalize must be True or False, got {l2_normalize!r}")
        super().__init__(model_or_path, target=target, backend=backend, num_threads=num_threads,
                         preprocessing=preprocessing)
        try:
            expected = "one embedding output of shape [1, D] (or [1,1,1,D] / [1,D,1,1])"
            self._out = find_output(self.model, "embedding", task="Embedder", expected=expected, name=output)
            spec = self.model.outputs[self._out]
            big = [d for d in spec.shape if d != 1]
            if len(big) > 1 or spec.np_dtype.kind not in "fui" or not spec.shape:
                raise IncompatibleModelError(f"Embedder: expected {expected}; found outputs {describe_outputs(self.model)}")
            if self.model.manifest.task is None:     # a model that says it embeds is trusted
                check_not_probabilities(spec, self._probe())      # (a family check: any normalisation will do)
            self._require_stated()
        except BaseException:
            self._close_owned()
            raise
        self.dim = int(big[0]) if big else 1
        self.l2_normalize = l2_normalize
        self._already_unit = bool(self.model.manifest.head_as(EmbeddingHead).l2_normalized)

    def _probe(self) -> np.ndarray:
        """The output on a probe image (for a model that does not state its task: is it an embedder?)."""
        _, outputs, *_ = self._forward(probe_image(), "rgb")
        return np.array(outputs[self._out], np.float32).reshape(-1)

    def embed(self, image: Any, *, color: str = "bgr") -> Embedding:
        """Embed one image (HxWx3 uint8 array or path; *color* is its channel order).

        Raises:
            ConfigError: unusable image.
            InferenceError: the runtime failed, or this object is in use by another thread.
        """
        with self._exclusive():
            transform, outputs, t0, t1, t2 = self._forward(image, color)
            vector = np.array(outputs[self._out], dtype=np.float32).reshape(self.dim)
            if self.l2_normalize:
                norm = float(np.sqrt(np.dot(vector, vector)))
                if norm > 0.0:
                    vector /= norm
            timing = self._timing(t0, t1, t2)
        return Embedding(vector, self.l2_normalize or self._already_unit,
                         timing)

    __call__ = embed
