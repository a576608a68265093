"""SSD export: raw outputs + anchors in the manifest by default, in-graph decoding when asked for."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import converters  # noqa: E402
import edgecv  # noqa: E402
from converters import reference, synthetic  # noqa: E402
from edgecv.boxes import BoxCoder, BoxDecoder  # noqa: E402
from edgecv.errors import ConfigError, ConversionError  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def ssd():
    return reference.build("detection", seed=3)       # untrained: the decoding is what is checked


def _raw(model, image):
    x = reference.model_inputs(image[None], input_size=64)
    boxes, scores = model(x, training=False)
    return boxes.numpy()[0], scores.numpy()[0]


def test_raw_export_keeps_encodings_and_manifest_anchors(ssd, tmp_path):
    images = synthetic.make_dataset(3, seed=1).images
    result = converters.convert(ssd, target=None, precision="fp32", validation=images, output_dir=tmp_path,
                                **reference.convert_options("detection"))
    raw_boxes, raw_scores = _raw(ssd, images[0])
    for artifact in result.artifacts:
        with edgecv.load(artifact.path) as m:
            assert m.manifest.head["form"] == "raw"
            assert m.manifest.head["anchors"] == reference.default_anchors(64).to_dict()
            m.preprocess(images[0])
            outs = m.invoke()
            np.testing.assert_allclose(outs[m.output_index("boxes")][0], raw_boxes, atol=1e-4)
            np.testing.assert_allclose(outs[m.output_index("scores")][0], raw_scores, atol=1e-4)


def test_in_graph_decoding_matches_the_runtime_decoder(ssd, tmp_path):
    images = synthetic.make_dataset(3, seed=1).images
    result = converters.convert(ssd, target=None, precision="fp32", validation=images, output_dir=tmp_path,
                                postprocess="decode", **reference.convert_options("detection"))
    raw_boxes, raw_scores = _raw(ssd, images[0])
    spec = reference.default_anchors(64)
    expected_boxes = BoxDecoder(spec.generate(), BoxCoder(order="yxhw", scales=reference.BOX_SCALES)).decode(raw_boxes)
    expected_scores = 1.0 / (1.0 + np.exp(-raw_scores))
    for artifact in result.artifacts:
        with edgecv.load(artifact.path) as m:
            head = m.manifest.head
            assert head["form"] == "decoded" and head["box_format"] == "xyxy" and head["score_activation"] == "none"
            assert "anchors" not in head and m.manifest.provenance["postprocess"] == "decode"
            m.preprocess(images[0])
            outs = m.invoke()
            np.testing.assert_allclose(outs[m.output_index("boxes")][0], expected_boxes, atol=1e-4)
            np.testing.assert_allclose(outs[m.output_index("scores")][0], expected_scores, atol=1e-5)
    assert result.report.artifacts[0].max_abs_diff < 1e-4


def test_postprocess_errors(ssd, tmp_path):
    opts = reference.convert_options("detection")
    with pytest.raises(ConfigError, match="in-graph NMS is not produced"):
        converters.convert(ssd, target=None, precision="fp32", output_dir=tmp_path, postprocess="nms", **opts)
    with pytest.raises(ConfigError, match="for detection models"):
        converters.convert(reference.build("classification"), task="classification", target=None, precision="fp32",
                           output_dir=tmp_path, postprocess="decode")
    without_anchors = {k: v for k, v in opts.items() if k not in ("anchors", "head")}
    with pytest.raises(ConversionError, match="needs raw SSD outputs with anchors"):
        converters.convert(ssd, target=None, precision="fp32", output_dir=tmp_path, postprocess="decode",
                           **without_anchors)
    onnx_path = converters.convert(ssd, target=None, precision="fp32", formats="onnx", output_dir=tmp_path / "a",
                                   **opts).artifacts[0].path
    with pytest.raises(ConversionError, match="not possible for an ONNX source"):
        converters.convert(onnx_path, target=None, precision="fp32", output_dir=tmp_path / "b", postprocess="decode",
                           **opts)
    assert sorted(os.listdir(tmp_path)) == ["a"]
