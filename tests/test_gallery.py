"""Gallery: enroll, identify, verify, save/load, and evaluation metrics with hand-computed answers."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from test_embedder import PRE, embedding_model, solid

import edgecv
from edgecv.metrics_embedding import evaluate_embeddings, recall_at_k, tar_at_far
from edgecv.tasks.embedder import Embedder
from edgecv.tasks.gallery import Gallery


def test_enroll_identify_verify_with_images(tmp_path):
    emb = Embedder(embedding_model(tmp_path), preprocessing=PRE)
    gallery = Gallery(emb)
    assert gallery.enroll("red", [solid((255, 0, 0)), solid((200, 10, 0))]) == 2
    assert gallery.enroll("blue", solid((0, 0, 255))) == 1
    assert gallery.enroll("blue", [emb(solid((0, 20, 230)))]) == 1  # Embedding objects too
    assert gallery.names == ("red", "blue") and len(gallery) == 2 and gallery.dim == 4
    assert gallery.templates("blue").shape == (2, 4)
    name, dist = gallery.identify(solid((128, 0, 0)), threshold=0.05)
    assert name == "red" and dist == pytest.approx(0.0, abs=1e-6) and type(dist) is float
    assert gallery.identify(solid((0, 255, 0)), threshold=0.2) is None  # green: cosine distance >= 0.43 from every template
    # red . blue = (1,0,0,1).(0,0,1,1) / 2 = 0.5 -> cosine distance 0.5
    assert gallery.distance(solid((255, 0, 0)), solid((0, 0, 255))) == pytest.approx(0.5, abs=1e-6)
    assert gallery.verify(solid((255, 0, 0)), solid((0, 0, 255)), threshold=0.6) is True
    assert gallery.verify(solid((255, 0, 0)), solid((0, 0, 255)), threshold=0.4) is False
    assert [n for n, _ in gallery.nearest(solid((10, 0, 250)), k=2)] == ["blue", "red"]


def test_enroll_vectors_and_errors():
    gallery = Gallery(metric="euclidean")
    gallery.enroll("a", np.array([[0.0, 0.0], [0.0, 1.0]]))
    gallery.enroll("b", np.array([5.0, 0.0]))
    assert gallery.identify(np.array([0.0, 0.8]), 0.5) == ("a", pytest.approx(0.2))
    assert gallery.identify(np.array([3.0, 0.0]), 1.0) is None
    with pytest.raises(edgecv.ConfigError, match="no embedder"):
        gallery.enroll("c", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(edgecv.ConfigError, match="length 3"):
        gallery.enroll("c", np.zeros(3))
    with pytest.raises(edgecv.ConfigError, match="threshold"):
        gallery.identify(np.zeros(2), -1.0)
    with pytest.raises(edgecv.ConfigError, match="not enrolled"):
        gallery.templates("zed")
    with pytest.raises(edgecv.ConfigError, match="metric"):
        Gallery(metric="manhattan")
    gallery.remove("a")
    assert gallery.names == ("b",) and gallery.templates("b").shape == (1, 2)
    with pytest.raises(edgecv.ConfigError, match="empty"):
        Gallery().identify(np.zeros(2), 1.0)


def test_save_load_round_trip(tmp_path):
    gallery = Gallery(metric="euclidean")
    gallery.enroll("ada", np.array([[1.0, 2.0, 3.0], [1.5, 2.0, 3.0]], np.float32))
    gallery.enroll("bo", np.array([-1.0, 0.0, 4.0], np.float32))
    path = gallery.save(tmp_path / "faces.npz")
    assert path.is_file() and not list(tmp_path.glob(".*tmp*"))
    loaded = Gallery.load(path)
    assert loaded.names == ("ada", "bo") and loaded.metric == "euclidean" and loaded.dim == 3
    np.testing.assert_array_equal(loaded.templates("ada"), gallery.templates("ada"))
    np.testing.assert_array_equal(loaded.templates("bo"), gallery.templates("bo"))
    query = np.array([1.2, 2.0, 3.0])
    assert loaded.identify(query, 1.0) == gallery.identify(query, 1.0)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["meta", "owners", "vectors"]
        meta = json.loads(data["meta"].tobytes().decode())
    assert meta["format"] == "edgecv.gallery" and meta["names"] == ["ada", "bo"]


def test_load_refuses_bad_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(edgecv.ConfigError, match="not a readable"):
        Gallery.load(tmp_path / "junk.npz")
    buffer = io.BytesIO()
    np.savez(buffer, vectors=np.zeros((1, 2), np.float32), owners=np.zeros(1, np.int32),
             meta=np.array([{"format": "edgecv.gallery"}], dtype=object))
    (tmp_path / "pickled.npz").write_bytes(buffer.getvalue())
    with pytest.raises(edgecv.ConfigError, match="not a readable"):  # object arrays need pickle: refused
        Gallery.load(tmp_path / "pickled.npz")
    buffer = io.BytesIO()
    meta = {"format": "edgecv.gallery", "version": 1, "metric": "cosine", "dim": 2, "names": ["a"]}
    np.savez(buffer, vectors=np.zeros((2, 2), np.float32), owners=np.array([0, 5], np.int32),
             meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    (tmp_path / "corrupt.npz").write_bytes(buffer.getvalue())
    with pytest.raises(edgecv.ConfigError, match="corrupt"):
        Gallery.load(tmp_path / "corrupt.npz")
    with pytest.raises(edgecv.ConfigError, match="does not exist"):
        Gallery.load(tmp_path / "missing.npz")
    with pytest.raises(edgecv.ConfigError, match="empty"):
        Gallery().save(tmp_path / "empty.npz")


def _line_gallery():
    gallery = Gallery(metric="euclidean")
    for name, x in (("A", 0.0), ("B", 10.0), ("C", 20.0)):
        gallery.enroll(name, np.array([x, 0.0]))
    return gallery


def test_evaluate_known_answers():
    """Hand-computed: gallery A=(0,0), B=(10,0), C=(20,0).

    probes  true  distances A, B, C       rank of own identity
    (1,0)   A     1, 9, 19                0
    (6,0)   A     6, 4, 14                1
    (10,1)  B     sqrt101, 1, sqrt101     0
    (14,0)  C     14, 4, 6                1
    (30,0)  D     30, 20, 10              (not enrolled: impostor pairs only)
    recall@1 = 2/4, recall@5 = recall@10 = 1.
    genuine = [1, 1, 6, 6]; impostors sorted = [4, 4, 9, 10, 10.05, 10.05, 14, 14, 19, 20, 30] (M = 11).
    FAR 0.01 -> floor(0.11) = 0 accepted -> threshold just below 4 -> TAR 2/4.
    FAR 0.1  -> floor(1.1) = 1 -> still below the second 4 -> TAR 2/4.
    FAR 0.2  -> floor(2.2) = 2 -> just below 9 -> TAR 4/4.
    """
    gallery = _line_gallery()
    probes = np.array([[1, 0], [6, 0], [10, 1], [14, 0], [30, 0]], np.float64)
    ev = gallery.evaluate(probes, ["A", "A", "B", "C", "D"], fars=(1e-2, 0.1, 0.2))
    assert ev.recall_at == {1: 0.5, 5: 1.0, 10: 1.0}
    assert ev.num_queries == 4 and ev.num_genuine_pairs == 4 and ev.num_impostor_pairs == 11
    assert ev.tar_at_far[0.01] == (0.5, float(np.nextafter(4.0, -np.inf)))
    assert ev.tar_at_far[0.1] == (0.5, float(np.nextafter(4.0, -np.inf)))
    assert ev.tar_at_far[0.2] == (1.0, float(np.nextafter(9.0, -np.inf)))
    data = ev.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["recall_at"]["1"] == 0.5


def test_evaluate_default_fars_and_threshold_semantics():
    gallery = _line_gallery()
    ev = gallery.evaluate(np.array([[1.0, 0.0], [6.0, 0.0]]), ["A", "A"])
    assert set(ev.tar_at_far) == {1e-2, 1e-3}
    tar, threshold = ev.tar_at_far[1e-3]
    # impostors: 9, 19, 4, 14 -> accept below 4: genuine 1 accepted, 6 not
    assert tar == 0.5 and threshold < 4.0
    assert gallery.verify(np.array([4.0, 0.0]), np.array([0.0, 0.0]), threshold) is False


def test_pure_metric_functions():
    d = np.array([[0.1, 0.5, 0.3], [0.2, 0.2, 0.9]])
    recall, counted = recall_at_k(d, ["x", "y"], ["x", "y", "x"], ks=(1, 2))
    # query x: x at min(0.1, 0.3) = 0.1 -> rank 0; query y: y 0.2 ties x 0.2, x listed first -> rank 1
    assert recall == {1: 0.5, 2: 1.0} and counted == 2
    result = tar_at_far([0.1, 0.2, 0.3, 0.9], [0.25, 0.5, 0.6, 0.7], fars=(0.25, 0.5, 1.0))
    # one impostor (0.25) may pass: accept below 0.5 -> genuine 0.1, 0.2, 0.3
    assert result[0.25] == (0.75, float(np.nextafter(0.5, -np.inf)))
    assert result[0.5] == (0.75, float(np.nextafter(0.6, -np.inf)))
    assert result[1.0] == (1.0, 0.9)
    with pytest.raises(edgecv.ConfigError):
        tar_at_far([0.1], [], fars=(0.1,))
    with pytest.raises(edgecv.ConfigError):
        tar_at_far([0.1], [0.2], fars=(0.0,))
    with pytest.raises(edgecv.ConfigError, match="no query"):
        recall_at_k(d, ["q", "r"], ["x", "y", "x"])


def test_leave_one_out_evaluation():
    vectors = np.array([[0, 0], [1, 0], [10, 0], [11, 0]], np.float64)
    ev = evaluate_embeddings(vectors, ["A", "A", "B", "B"], metric="euclidean", fars=(0.25,))
    assert ev.recall_at[1] == 1.0 and ev.num_queries == 4
    # genuine pairs 1, 1; impostors 10, 11, 9, 10 -> FAR 0.25 allows 1 -> below the second (10): TAR 1
    assert ev.num_genuine_pairs == 2 and ev.num_impostor_pairs == 4
    assert ev.tar_at_far[0.25] == (1.0, float(np.nextafter(10.0, -np.inf)))
