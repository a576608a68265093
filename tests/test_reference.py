"""converters.synthetic and converters.reference: deterministic data, consistent annotations, model shapes, SSD targets."""

from __future__ import annotations

import numpy as np
import pytest

from converters import synthetic
from edgecv.errors import ConfigError

cv2 = pytest.importorskip("cv2")


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = synthetic.make_dataset(20, seed=3, size=64)
    b = synthetic.make_dataset(20, seed=3, size=64)
    c = synthetic.make_dataset(20, seed=4, size=64)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.masks, b.masks)
    assert all(np.array_equal(x, y) for x, y in zip(a.boxes, b.boxes))
    assert a.labels.tolist() == b.labels.tolist() and a.identities.tolist() == b.identities.tolist()
    assert not np.array_equal(a.images, c.images)


def test_annotations_agree_with_each_other():
    data = synthetic.make_dataset(60, seed=0, size=64, max_objects=3)
    assert data.images.shape == (60, 64, 64, 3) and data.images.dtype == np.uint8
    assert data.masks.shape == (60, 64, 64) and data.masks.max() <= len(synthetic.CLASS_NAMES)
    counts = [len(b) for b in data.boxes]
    assert min(counts) >= 1 and max(counts) <= 3 and len(set(counts)) > 1
    for i in range(len(data)):
        boxes, classes = data.boxes[i], data.box_classes[i]
        assert boxes.shape == (len(classes), 4) and boxes.dtype == np.float32
        assert classes[0] == data.labels[i]                       # the first (main) shape carries the label
        assert data.identities[i] // len(synthetic.COLORS) == data.labels[i]
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        assert sides[0] >= 0.28 * 64 and np.all(sides[1:] <= 0.34 * 64)    # main shape 35-60 %, others 15-30 %
        for box, cls in zip(boxes, classes):
            x1, y1, x2, y2 = box.astype(int)
            inside = data.masks[i, y1:y2, x1:x2]
            assert np.count_nonzero(inside == cls + 1) > 0.3 * inside.size
        covered = np.zeros((64, 64), bool)
        for x1, y1, x2, y2 in boxes.astype(int):
            covered[y1:y2, x1:x2] = True
        assert not np.any(data.masks[i][~covered])                # no shape pixel outside every box
    assert set(np.unique(data.labels)) == set(range(len(synthetic.CLASS_NAMES)))


def test_single_object_data_and_identities():
    data = synthetic.make_dataset(300, seed=1, max_objects=1)
    assert all(len(b) == 1 for b in data.boxes)
    assert len(np.unique(data.identities)) == synthetic.NUM_IDENTITIES
    # an identity is a shape in one colour: its images share the colour of the mask pixels (BGR, +-20 shade)
    for ident in range(3):
        idx = np.flatnonzero(data.identities == ident)[:4]
        colours = [data.images[i][data.masks[i] > 0].mean(0) for i in idx]
        assert np.ptp(np.stack(colours), axis=0).max() < 45


def test_subset_split_and_validation_set():
    data = synthetic.make_dataset(10, seed=2)
    first, rest = data.split(4)
    assert len(first) == 4 and len(rest) == 6
    assert np.array_equal(rest.images[0], data.images[4]) and rest.boxes[0] is data.boxes[4]
    vs = data.to_validation_set()
    assert len(vs) == 10 and vs.labels[3] == int(data.labels[3]) and vs.color == "bgr"
    assert vs.masks[2].shape == (64, 64) and vs.identities[5] == int(data.identities[5])
    with pytest.raises(ConfigError):
        data.split(10)


@pytest.mark.parametrize("kwargs", [dict(n=0), dict(n=3, size=16), dict(n=3, max_objects=0), dict(n=2.5)])
def test_make_dataset_rejects_bad_arguments(kwargs):
    with pytest.raises(ConfigError):
        synthetic.make_dataset(**kwargs)


# ---------------------------------------------------------------------------- models (need TensorFlow)

tf = pytest.importorskip("tensorflow")

from converters import reference  # noqa: E402


@pytest.mark.parametrize("family, shapes", [
    ("classification", [(None, 4)]),
    ("segmentation", [(None, 64, 64, 5)]),
    ("embedding", [(None, 32)]),
    ("detection", [(None, 336, 4), (None, 336, 4)]),
])
def test_reference_models_build(family, shapes):
    model = reference.build(family)
    assert [tuple(o.shape) for o in model.outputs] == shapes
    assert tuple(model.inputs[0].shape) == (None, 64, 64, 3)
    assert model.count_params() < 100_000                       # trains in seconds on two cores
    names = list(model.output_names)
    assert names == {"classification": ["scores"], "segmentation": ["mask"], "embedding": ["embedding"],
                     "detection": ["boxes", "scores"]}[family]


def test_embedder_output_is_unit_length():
    model = reference.build("embedding")
    x = reference.model_inputs(synthetic.make_dataset(3, seed=0).images, input_size=64)
    np.testing.assert_allclose(np.linalg.norm(model(x).numpy(), axis=1), 1.0, atol=1e-5)


def test_build_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="unknown model family 'detector'"):
        reference.build("detector")
    with pytest.raises(ConfigError, match="multiple of 32"):
        reference.build("classification", input_size=48)


def test_default_anchors_match_the_ssd_grids():
    spec = reference.default_anchors(64)
    assert spec.feature_maps == ((8, 8), (4, 4), (2, 2))
    assert spec.num_anchors == 336 and spec.generate().shape == (336, 4)
    assert spec.to_dict()["kind"] == "ssd"


def test_detection_targets_decode_back_to_the_boxes():
    from edgecv.boxes import BoxCoder, BoxDecoder

    data = synthetic.make_dataset(12, seed=5, max_objects=3)
    spec = reference.default_anchors(64)
    boxes, scores = reference.detection_targets(data, spec)
    assert boxes.shape == (12, 336, 5) and scores.shape == (12, 336, 5)
    decoder = BoxDecoder(spec.generate(), BoxCoder(order="yxhw", scales=reference.BOX_SCALES))
    for i in range(len(data)):
        positive = boxes[i, :, 4] == 1
        assert positive.sum() >= len(data.boxes[i])            # every object has at least its best anchor
        decoded = decoder.decode(boxes[i, :, :4]) * 64          # x1, y1, x2, y2 normalised -> pixels
        for row in np.flatnonzero(positive):
            cls = int(np.argmax(scores[i, row, :4]))
            assert scores[i, row, :4].sum() == 1.0
            match = [j for j, c in enumerate(data.box_classes[i]) if c == cls
                     and np.allclose(decoded[row], data.boxes[i][j], atol=1e-3)]
            assert match, (i, row)
        assert np.all(scores[i, ~positive, :4] == 0)
    assert set(np.unique(scores[..., 4])) <= {0.0, 1.0}


def test_convert_options_describe_the_models():
    opts = reference.convert_options("detection")
    assert opts["task"] == "detection" and opts["labels"] == synthetic.CLASS_NAMES
    assert opts["anchors"] == reference.default_anchors(64)
    assert opts["head"]["score_activation"] == "sigmoid" and opts["head"]["background_class"] is None
    assert reference.convert_options("segmentation")["labels"][0] == "background"
    assert reference.make_data("classification", 5, seed=0).boxes[0].shape == (1, 4)


def test_training_reduces_the_loss_quickly():
    import keras

    data = reference.make_data("classification", 256, seed=0)
    model = reference.build("classification")
    before = float(keras.losses.sparse_categorical_crossentropy(
        data.labels, model(reference.model_inputs(data.images, input_size=64))).numpy().mean())
    reference.train("classification", data, model=model, epochs=3)
    after = float(keras.losses.sparse_categorical_crossentropy(
        data.labels, model(reference.model_inputs(data.images, input_size=64), training=True)).numpy().mean())
    assert after < before
