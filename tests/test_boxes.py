"""Box geometry: IoU, SSD centre-size decoding and encoding, clipping."""

from __future__ import annotations

import numpy as np
import pytest

from edgecv.boxes import BoxCoder, BoxDecoder, box_iou, clip_boxes, decode_center_size, encode_center_size
from edgecv.errors import ConfigError

pytestmark = pytest.mark.device


def test_box_iou_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 10]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [10, 10, 0, 0]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 4) and iou.dtype == np.float64
    np.testing.assert_array_equal(iou[0], [50 / 150, 1.0, 0.0, 1.0])   # inverted corners = same box
    np.testing.assert_array_equal(iou[1], [0.0, 0.0, 0.0, 0.0])         # zero-area box
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_box_iou_rejects_bad_input():
    with pytest.raises(ConfigError, match=r"\(N, 4\)"):
        box_iou(np.zeros((3, 5)), np.zeros((1, 4)))
    with pytest.raises(ConfigError, match="NaN"):
        box_iou(np.array([[0, 0, np.nan, 1]]), np.zeros((1, 4)))


def test_decode_tf_convention_by_hand():
    # anchor ycenter=0.5, xcenter=0.25, h=0.2, w=0.4; encodings ty=1, tx=-2, th=5*ln2, tw=0
    anchors = np.array([[0.5, 0.25, 0.2, 0.4]], np.float32)
    enc = np.array([[1.0, -2.0, 5 * np.log(2.0), 0.0]], np.float32)
    box = decode_center_size(enc, anchors)
    cy, cx = 1.0 / 10 * 0.2 + 0.5, -2.0 / 10 * 0.4 + 0.25
    h, w = 2 * 0.2, 0.4
    np.testing.assert_allclose(box[0], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], rtol=0, atol=1e-7)
    assert box.dtype == np.float32 and box.shape == (1, 4)


def test_decode_torch_convention_by_hand():
    priors = np.array([[0.5, 0.25, 0.2, 0.4]], np.float32)  # cx, cy, w, h
    loc = np.array([[1.0, -2.0, 0.0, 5 * np.log(3.0)]], np.float32)
    box = decode_center_size(loc, priors, variances=(0.1, 0.2), order="xywh")
    cx, cy = 1.0 * 0.1 * 0.2 + 0.5, -2.0 * 0.1 * 0.4 + 0.25
    w, h = 0.2, np.exp(5 * np.log(3.0) * 0.2) * 0.4
    np.testing.assert_allclose(box[0], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], rtol=0, atol=1e-7)


@pytest.mark.parametrize("order", ["yxhw", "xywh"])
def test_encode_decode_round_trip(order):
    rng = np.random.default_rng(0)
    n = 500
    centres = rng.uniform(0.1, 0.9, (n, 2))
    sizes = rng.uniform(0.01, 0.5, (n, 2))
    anchors = np.concatenate([centres, sizes], 1)                     # any order: columns are per-order
    boxes_xy = rng.uniform(0.0, 0.5, (n, 2))
    boxes = np.concatenate([boxes_xy, boxes_xy + rng.uniform(0.01, 0.5, (n, 2))], 1)
    enc = encode_center_size(boxes, anchors, order=order, scales=(10, 10, 5, 5))
    back = decode_center_size(enc.astype(np.float32), anchors, order=order)
    np.testing.assert_allclose(back, boxes, atol=2e-6)


def test_variances_equal_inverse_scales():
    rng = np.random.default_rng(1)
    anchors = np.concatenate([rng.uniform(0, 1, (50, 2)), rng.uniform(0.05, 0.5, (50, 2))], 1)
    enc = rng.normal(0, 1, (50, 4)).astype(np.float32)
    a = decode_center_size(enc, anchors, order="xywh", variances=(0.1, 0.2))
    b = decode_center_size(enc, anchors, order="xywh", scales=(10, 10, 5, 5))
    np.testing.assert_allclose(a, b, atol=1e-7)
    assert BoxCoder.from_variances(0.1, 0.2).scales == pytest.approx((10, 10, 5, 5))


def test_box_decoder_writes_preallocated_buffers():
    rng = np.random.default_rng(2)
    anchors = np.concatenate([rng.uniform(0, 1, (100, 2)), rng.uniform(0.05, 0.5, (100, 2))], 1)
    decoder = BoxDecoder(anchors)
    enc = rng.normal(0, 1, (1, 100, 1, 4)).astype(np.float32)     # SSD's [1, N, 1, 4]
    first = decoder.decode(enc)
    again = decoder.decode(enc * 0.5)
    assert first is again                                              # the decoder's own buffer
    out = np.empty((100, 4), np.float32)
    assert decoder.decode(enc, out=out) is out
    np.testing.assert_array_equal(out, decode_center_size(enc, anchors))


@pytest.mark.parametrize("coder", [BoxCoder(order="yxhw"), BoxCoder.from_variances(0.1, 0.2)])
def test_box_decoder_decodes_chosen_rows_bit_for_bit(coder):
    """Decoding only a frame's candidate anchors gives exactly those rows of a full decode."""
    rng = np.random.default_rng(4)
    anchors = np.concatenate([rng.uniform(0, 1, (500, 2)), rng.uniform(0.01, 0.6, (500, 2))], 1)
    decoder = BoxDecoder(anchors, coder)
    enc = rng.normal(0, 2, (1, 500, 4)).astype(np.float32)
    buffer = decoder.decode(enc)
    full = buffer.copy()
    for rows in (np.array([499, 0, 17, 17, 250]), np.arange(500), np.zeros(0, np.int64),
                 np.array([3, 9], np.int32)):
        got = decoder.decode(enc[0][rows], rows=rows)
        assert got.shape == (rows.size, 4) and got.dtype == np.float32
        np.testing.assert_array_equal(got, full[rows])
    out = np.empty((2, 4), np.float32)
    assert decoder.decode(enc[0][[1, 2]], out=out, rows=[1, 2]) is out
    np.testing.assert_array_equal(out, full[[1, 2]])
    np.testing.assert_array_equal(buffer, full)                      # row decodes leave the decoder's buffer alone
    with pytest.raises(ConfigError, match="index the 500 anchors"):
        decoder.decode(enc[0][:1], rows=[500])
    with pytest.raises(ConfigError, match="index the 500 anchors"):
        decoder.decode(enc[0][:1], rows=[-1])
    with pytest.raises(ConfigError, match="1-D integer"):
        decoder.decode(enc[0][:1], rows=[0.5])
    with pytest.raises(ConfigError, match="2 rows"):
        decoder.decode(enc[0][:3], rows=[1, 2])


def test_decoder_rejects_bad_input():
    anchors = np.ones((10, 4), np.float32)
    decoder = BoxDecoder(anchors)
    with pytest.raises(ConfigError, match="dequantize"):
        decoder.decode(np.zeros((10, 4), np.uint8))
    with pytest.raises(ConfigError, match="10 rows"):
        decoder.decode(np.zeros((11, 4), np.float32))
    with pytest.raises(ConfigError, match="float32"):
        decoder.decode(np.zeros((10, 4), np.float32), out=np.zeros((10, 4)))
    with pytest.raises(ConfigError, match="not both"):
        decode_center_size(np.zeros((10, 4), np.float32), anchors, scales=(1, 1, 1, 1), variances=(0.1, 0.2))
    with pytest.raises(ConfigError, match="order"):
        decode_center_size(np.zeros((10, 4), np.float32), anchors, order="xyxy")
    with pytest.raises(ConfigError, match="> 0"):
        BoxCoder(scales=(10, 10, 0, 5))
    with pytest.raises(ConfigError, match="anchors"):
        BoxDecoder(np.ones((10, 3)))


def test_box_coder_dict_round_trip():
    coder = BoxCoder.from_variances(0.1, 0.2)
    assert BoxCoder.from_dict(coder.to_dict()) == coder
    assert coder.to_dict() == {"type": "center_size", "order": "xywh", "scales": [10.0, 10.0, 5.0, 5.0]}
    with pytest.raises(ConfigError, match="unknown box coder fields"):
        BoxCoder.from_dict({"type": "center_size", "order": "yxhw", "variance": 1})


def test_clip_boxes():
    boxes = np.array([[-0.1, 0.2, 1.3, 0.9], [0.5, -2.0, 0.6, 2.0]], np.float32)
    np.testing.assert_array_equal(clip_boxes(boxes), np.array([[0.0, 0.2, 1.0, 0.9], [0.5, 0.0, 0.6, 1.0]], np.float32))
    px = np.array([[-5.0, 3.0, 700.0, 500.0]])
    assert clip_boxes(px, width=640, height=480).tolist() == [[0.0, 3.0, 640.0, 480.0]]
    assert clip_boxes(boxes, out=boxes) is boxes
    with pytest.raises(ConfigError, match="> 0"):
        clip_boxes(boxes, width=0)


def test_box_decoder_allocates_nothing_per_call():
    import tracemalloc

    rng = np.random.default_rng(3)
    anchors = np.concatenate([rng.uniform(0, 1, (1917, 2)), rng.uniform(0.05, 0.5, (1917, 2))], 1)
    decoder = BoxDecoder(anchors)
    enc = rng.normal(0, 1, (1, 1917, 1, 4)).astype(np.float32)
    out = np.empty((1917, 4), np.float32)
    decoder.decode(enc, out=out)
    tracemalloc.start()
    try:
        decoder.decode(enc, out=out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2048          # one float32 column alone would be 7668 bytes
