"""Small reference models for the four task families, and how to train them on the shapes data.

All four take ``input_size`` x ``input_size`` RGB images normalised to -1..1
(:data:`PREPROCESSING`: mean 127.5, std 127.5, the runtime path) and train in
seconds on two CPU cores at 64 x 64:

* ``classification``: MobileNet-style (depthwise-separable blocks, ReLU6,
  batch norm), global pooling, softmax ``scores``.
* ``detection``: SSD-lite on the same backbone: depthwise-separable heads
  on 3 feature maps, raw ``boxes`` (TF OD API encodings ty, tx, th, tw
  against :func:`default_anchors`, an :class:`edgecv.anchors.AnchorSpec`)
  and ``scores`` (per-class logits, sigmoid; no background column). The
  runtime decodes it from the manifest.
* ``segmentation``: small encoder-decoder (bilinear upsampling + skips),
  ``mask`` logits ``[1, S, S, classes + 1]`` (0 = background).
* ``embedding``: FaceNet-style: backbone, linear projection, L2-normalised
  ``embedding``, trained with the batch-hard triplet loss on identities.

    >>> from converters import reference, synthetic
    >>> data = synthetic.make_dataset(1200, seed=0)
    >>> model = reference.train("classification", data, epochs=8)
    >>> kwargs = reference.convert_options("classification", data)  # task, labels, preprocessing, ...
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgecv.errors import ConfigError, did_you_mean
from edgecv.manifest import Preprocessing

from ._env import import_tensorflow
from .synthetic import CLASS_NAMES, ShapesDataset

__all__ = ["FAMILIES", "PREPROCESSING", "build", "train", "default_anchors", "model_inputs", "detection_targets",
           "convert_options", "custom_objects", "make_data", "DEFAULT_EPOCHS", "MAX_OBJECTS", "BOX_SCALES"]

log = logging.getLogger("edgecv.converters")

FAMILIES = ("classification", "detection", "segmentation", "embedding")
PREPROCESSING = Preprocessing(mean=(127.5,), std=(127.5,), color="rgb")
DEFAULT_EPOCHS = {"classification": 6, "detection": 10, "segmentation": 6, "embedding": 12}
#: shapes per image in each family's data: one for classification and embedding (the main shape is the
#: label / identity), up to three for detection and segmentation.
MAX_OBJECTS = {"classification": 1, "detection": 3, "segmentation": 3, "embedding": 1}
BOX_SCALES = (10.0, 10.0, 5.0, 5.0)   # TF OD API: ty, tx, th, tw
TRIPLET_MARGIN = 0.2


def make_data(family: str, n: int, *, seed: int = 0, size: int = 64) -> ShapesDataset:
    """Shapes data for *family* (``synthetic.make_dataset`` with the family's :data:`MAX_OBJECTS`)."""
    from .synthetic import make_dataset

    return make_dataset(n, seed, size, max_objects=MAX_OBJECTS[_family(family)])


def _family(family: str) -> str:
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}{did_you_mean(str(family), FAMILIES)}; "
                          f"choose one of {', '.join(FAMILIES)}")
    return family


def default_anchors(input_size: int = 64) -> Any:
    """The SSD-lite anchors: TF OD API generator on grids of stride 8, 16 and 32.

    Scales 0.15 .. 0.7 (plus the interpolated ones), aspect ratios 1, 2 and
    1/2, four anchors per cell on every layer.

    Raises:
        ConfigError: *input_size* not a multiple of 32.
    """
    from edgecv.anchors import AnchorSpec

    if input_size % 32:
        raise ConfigError(f"input_size must be a multiple of 32 for the SSD-lite grids, got {input_size}")
    grids = tuple((input_size // s, input_size // s) for s in (8, 16, 32))
    return AnchorSpec.ssd(grids, min_scale=0.15, max_scale=0.7, aspect_ratios=(1.0, 2.0, 0.5),
                          reduce_boxes_in_lowest_layer=False)


# --------------------------------------------------------------------------- architectures

_L2_LAYER: Any = None


def _l2_normalize_layer() -> Any:
    """The ``L2Normalize`` Keras layer class (registered with Keras on first use).

    It calls ``tf.math.l2_normalize``, which the TFLite converter turns into one
    ``L2_NORMALIZATION`` op with an int8 kernel (Keras' own UnitNormalization
    leaves a float SQUARE op behind in full-integer models).
    """
    global _L2_LAYER
    if _L2_LAYER is None:
        tf = import_tensorflow()
        import keras

        @keras.saving.register_keras_serializable(package="edgecv", name="L2Normalize")
        class L2Normalize(keras.layers.Layer):
            """Scale each row to unit L2 length (epsilon 1e-12)."""

            def call(self, inputs: Any) -> Any:
                return tf.math.l2_normalize(inputs, axis=-1, epsilon=1e-12)

        _L2_LAYER = L2Normalize
    return _L2_LAYER


def custom_objects() -> dict[str, Any]:
    """Custom layers of the reference models, for ``keras.saving.load_model`` / ``convert(custom_objects=...)``."""
    return {"edgecv>L2Normalize": _l2_normalize_layer()}


def _conv_bn(keras: Any, x: Any, filters: int, kernel: int, stride: int, name: str) -> Any:
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def _separable(keras: Any, x: Any, filters: int, stride: int, name: str) -> Any:
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    return _conv_bn(keras, x, filters, 1, 1, f"{name}_pw")


def _backbone(keras: Any, inp: Any, width: int) -> list[Any]:
    """Feature maps at strides 2, 4, 8, 16, 32."""
    s2 = _conv_bn(keras, inp, width, 3, 2, "stem")
    s4 = _separable(keras, s2, 2 * width, 2, "block1")
    s8 = _separable(keras, s4, 4 * width, 2, "block2")
    s16 = _separable(keras, s8, 8 * width, 2, "block3")
    s32 = _separable(keras, s16, 8 * width, 2, "block4")
    return [s2, s4, s8, s16, s32]


def build(family: str, *, input_size: int = 64, num_classes: int = len(CLASS_NAMES), width: int = 16,
          embedding_dim: int = 32, anchors: Any = None, seed: int = 0) -> Any:
    """A fresh (untrained) reference ``keras.Model`` for *family*.

    Args:
        family: "classification", "detection", "segmentation" or "embedding".
        input_size: square input side in pixels (multiple of 32).
        num_classes: object classes (segmentation adds a background class 0).
        width: channels of the first layer (the rest scale with it).
        embedding_dim: embedding length.
        anchors: detection: an AnchorSpec (default :func:`default_anchors`).
        seed: weight initialisation seed.

    Raises:
        ConfigError: unknown family or bad sizes.
    """
    family = _family(family)
    if not isinstance(input_size, int) or input_size < 32 or input_size % 32:
        raise ConfigError(f"input_size must be a multiple of 32 (>= 32), got {input_size!r}")
    import_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((input_size, input_size, 3), name="image")
    s2, s4, s8, s16, s32 = _backbone(keras, inp, width)
    if family == "classification":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(s32)
        out = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
        return keras.Model(inp, out, name="shapes_classifier")
    if family == "embedding":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(s32)
        x = keras.layers.Dense(embedding_dim, name="projection")(x)
        out = _l2_normalize_layer()(name="embedding")(x)
        return keras.Model(inp, out, name="shapes_embedder")
    if family == "segmentation":
        x = _conv_bn(keras, s16, 4 * width, 1, 1, "dec16")
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name="up8")(x)
        x = keras.layers.Concatenate(name="skip8")([x, s8])
        x = _separable(keras, x, 2 * width, 1, "dec8")
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name="up4")(x)
        x = keras.layers.Concatenate(name="skip4")([x, s4])
        x = _separable(keras, x, width, 1, "dec4")
        x = keras.layers.UpSampling2D(4, interpolation="bilinear", name="up1")(x)
        out = keras.layers.Conv2D(num_classes + 1, 3, padding="same", name="mask")(x)
        return keras.Model(inp, out, name="shapes_segmenter")
    spec = anchors if anchors is not None else default_anchors(input_size)
    per_layer = [len(specs) for specs in spec.layer_box_specs()]
    maps = [s8, s16, s32]
    if len(per_layer) != len(maps) or [tuple(m.shape[1:3]) for m in maps] != [tuple(f) for f in spec.feature_maps]:
        raise ConfigError(f"anchors feature maps {spec.feature_maps} do not match the SSD-lite grids "
                          f"{[tuple(m.shape[1:3]) for m in maps]}")
    boxes, scores = [], []
    for i, (fmap, k) in enumerate(zip(maps, per_layer)):
        b = keras.layers.DepthwiseConv2D(3, padding="same", name=f"box{i}_dw")(fmap)
        b = keras.layers.Conv2D(4 * k, 1, name=f"box{i}")(b)
        boxes.append(keras.layers.Reshape((-1, 4), name=f"box{i}_flat")(b))
        c = keras.layers.DepthwiseConv2D(3, padding="same", name=f"cls{i}_dw")(fmap)
        c = keras.layers.Conv2D(num_classes * k, 1, name=f"cls{i}",
                                bias_initializer=keras.initializers.Constant(-4.0))(c)
        scores.append(keras.layers.Reshape((-1, num_classes), name=f"cls{i}_flat")(c))
    out_boxes = keras.layers.Concatenate(axis=1, name="boxes")(boxes)
    out_scores = keras.layers.Concatenate(axis=1, name="scores")(scores)
    return keras.Model(inp, [out_boxes, out_scores], name="shapes_ssdlite")


# --------------------------------------------------------------------------- data -> training tensors

def model_inputs(images: np.ndarray | Sequence[np.ndarray], *, input_size: int, color: str = "bgr",
                 preprocessing: Preprocessing = PREPROCESSING) -> np.ndarray:
    """Float32 model inputs (N, S, S, 3) made by the runtime's own preprocessing (edgecv.Preprocessor).

    Raises:
        ConfigError: unusable images.
    """
    from edgecv.specs import TensorSpec

    from .calibration import Preprocess

    pre = Preprocess(TensorSpec("image", (1, input_size, input_size, 3), "float32", None, "nhwc"), preprocessing, color)
    return np.stack([pre(img)[0] for img in images]) if len(images) else np.zeros((0, input_size, input_size, 3), np.float32)


def _corner_iou(anchors_yxhw: np.ndarray, boxes_yxyx: np.ndarray) -> np.ndarray:
    ay1 = anchors_yxhw[:, 0] - anchors_yxhw[:, 2] / 2
    ax1 = anchors_yxhw[:, 1] - anchors_yxhw[:, 3] / 2
    ay2 = anchors_yxhw[:, 0] + anchors_yxhw[:, 2] / 2
    ax2 = anchors_yxhw[:, 1] + anchors_yxhw[:, 3] / 2
    iy = np.clip(np.minimum(ay2[:, None], boxes_yxyx[None, :, 2]) - np.maximum(ay1[:, None], boxes_yxyx[None, :, 0]), 0, None)
    ix = np.clip(np.minimum(ax2[:, None], boxes_yxyx[None, :, 3]) - np.maximum(ax1[:, None], boxes_yxyx[None, :, 1]), 0, None)
    inter = iy * ix
    area_a = (ay2 - ay1) * (ax2 - ax1)
    area_b = (boxes_yxyx[:, 2] - boxes_yxyx[:, 0]) * (boxes_yxyx[:, 3] - boxes_yxyx[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-12)


def detection_targets(data: ShapesDataset, anchors: Any, *, positive_iou: float = 0.5,
                      negative_iou: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """SSD training targets for every image.

    Returns:
        ``boxes`` (N, A, 5): TF OD API encodings ty, tx, th, tw (scales 10, 10, 5, 5) and a positive flag;
        ``scores`` (N, A, K + 1): one-hot classes of positive anchors and a "counts in the loss" flag
        (0 for anchors between the negative and positive IoU).
    """
    prior = anchors.generate("yxhw").astype(np.float64)
    n_anchors, k = len(prior), data.num_classes
    size = float(data.size)
    out_boxes = np.zeros((len(data), n_anchors, 5), np.float32)
    out_scores = np.zeros((len(data), n_anchors, k + 1), np.float32)
    sy, sx, sh, sw = BOX_SCALES
    for i in range(len(data)):
        gt = np.asarray(data.boxes[i], np.float64).reshape(-1, 4) / size        # x1, y1, x2, y2 normalised
        cls = np.asarray(data.box_classes[i], np.int64)
        out_scores[i, :, k] = 1.0
        if len(gt) == 0:
            continue
        yxyx = gt[:, [1, 0, 3, 2]]
        iou = _corner_iou(prior, yxyx)
        best_gt = iou.argmax(1)
        best_iou = iou.max(1)
        positive = best_iou >= positive_iou
        forced = iou.argmax(0)                      # every object gets its best anchor
        positive[forced] = True
        best_gt[forced] = np.arange(len(gt))
        ignore = (~positive) & (best_iou >= negative_iou)
        g = yxyx[best_gt]
        gy, gx = (g[:, 0] + g[:, 2]) / 2, (g[:, 1] + g[:, 3]) / 2
        gh, gw = np.maximum(g[:, 2] - g[:, 0], 1e-6), np.maximum(g[:, 3] - g[:, 1], 1e-6)
        enc = np.stack([(gy - prior[:, 0]) / prior[:, 2] * sy, (gx - prior[:, 1]) / prior[:, 3] * sx,
                        np.log(gh / prior[:, 2]) * sh, np.log(gw / prior[:, 3]) * sw], axis=1)
        out_boxes[i, positive, :4] = enc[positive]
        out_boxes[i, positive, 4] = 1.0
        out_scores[i, positive, cls[best_gt[positive]]] = 1.0
        out_scores[i, ignore, k] = 0.0
    return out_boxes, out_scores


# --------------------------------------------------------------------------- losses

def _box_loss(y_true: Any, y_pred: Any) -> Any:
    from keras import ops

    positive = y_true[..., 4]
    diff = ops.abs(y_true[..., :4] - y_pred)
    huber = ops.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5)
    per_anchor = ops.sum(huber, axis=-1) * positive
    return ops.sum(per_anchor, axis=-1) / ops.maximum(ops.sum(positive, axis=-1), 1.0)


def _focal_loss(y_true: Any, y_pred: Any) -> Any:
    from keras import ops

    labels, counted = y_true[..., :-1], y_true[..., -1:]
    p = ops.sigmoid(y_pred)
    bce = ops.maximum(y_pred, 0.0) - y_pred * labels + ops.log1p(ops.exp(-ops.abs(y_pred)))
    p_t = labels * p + (1.0 - labels) * (1.0 - p)
    alpha = labels * 0.25 + (1.0 - labels) * 0.75
    loss = alpha * ops.power(1.0 - p_t, 2.0) * bce * counted
    positives = ops.sum(labels, axis=(-2, -1))
    return ops.sum(loss, axis=(-2, -1)) / ops.maximum(positives, 1.0)


def _triplet_loss(y_true: Any, y_pred: Any) -> Any:
    """Batch-all triplet loss on unit embeddings (squared euclidean distance).

    For every anchor, the mean of ``max(d(a, p) - d(a, n) + margin, 0)`` over
    the triplets of the batch that still violate the margin (FaceNet's loss;
    averaging over the active triplets keeps it from collapsing early).
    """
    from keras import ops

    ids = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    dots = ops.matmul(y_pred, ops.transpose(y_pred))
    dist = ops.maximum(2.0 - 2.0 * dots, 0.0)
    same = ops.cast(ops.equal(ids[:, None], ids[None, :]), "float32")
    positive = same - ops.eye(ops.shape(ids)[0], dtype="float32")
    negative = 1.0 - same
    violation = ops.maximum(dist[:, :, None] - dist[:, None, :] + TRIPLET_MARGIN, 0.0)
    valid = positive[:, :, None] * negative[:, None, :]
    violation = violation * valid
    active = ops.sum(ops.cast(violation > 1e-12, "float32"), axis=(1, 2))
    return ops.sum(violation, axis=(1, 2)) / ops.maximum(active, 1.0)


# --------------------------------------------------------------------------- training

def train(family: str, data: ShapesDataset, *, model: Any = None, epochs: int | None = None, batch_size: int = 32,
          learning_rate: float = 3e-3, seed: int = 0, verbose: int = 0, color: str = "bgr") -> Any:
    """Train a reference model (built with :func:`build` unless *model* is given) on shapes data.

    Args:
        family: the task family.
        data: training images and annotations (e.g. ``synthetic.make_dataset(1200, seed=0)``).
        model: a model from :func:`build` to continue training.
        epochs: passes over *data* (default :data:`DEFAULT_EPOCHS`).
        batch_size, learning_rate, seed, verbose: the usual.
        color: channel order of ``data.images`` ("bgr" for synthetic data).

    Returns:
        The trained ``keras.Model``.

    Raises:
        ConfigError: unknown family, empty data, or a model that does not fit the data.
    """
    family = _family(family)
    if len(data) < 2:
        raise ConfigError("training needs at least 2 images")
    import_tensorflow()
    import keras

    if model is None:
        model = build(family, input_size=data.size, num_classes=data.num_classes, seed=seed)
    size = int(model.inputs[0].shape[1])
    keras.utils.set_random_seed(seed)
    x = model_inputs(data.images, input_size=size, color=color)
    optimizer = keras.optimizers.Adam(learning_rate)
    if family == "classification":
        model.compile(optimizer, loss="sparse_categorical_crossentropy")
        y: Any = data.labels
    elif family == "segmentation":
        model.compile(optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        y = data.masks.astype(np.int32)
        if data.masks.shape[1] != size:
            raise ConfigError(f"segmentation masks are {data.masks.shape[1]} px but the model input is {size} px")
    elif family == "embedding":
        model.compile(optimizer, loss=_triplet_loss)
        y = data.identities.astype(np.float32)
        batch_size = max(batch_size, 64)   # enough positives per batch for batch-hard mining
    else:
        anchors = default_anchors(size)
        model.compile(optimizer, loss={"boxes": _box_loss, "scores": _focal_loss})
        boxes, scores = detection_targets(data, anchors)
        y = {"boxes": boxes, "scores": scores}
    epochs = DEFAULT_EPOCHS[family] if epochs is None else int(epochs)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose)
    return model


def convert_options(family: str, data: ShapesDataset | None = None, *, input_size: int = 64) -> dict[str, Any]:
    """The ``converters.convert`` keyword arguments that describe a reference model of *family*.

    ``task``, ``labels``, ``preprocessing`` and, for detection, ``anchors`` and
    the head settings (sigmoid scores, TF box coder, no background column).
    """
    family = _family(family)
    names = tuple(data.class_names) if data is not None else CLASS_NAMES
    size = data.size if data is not None else input_size
    options: dict[str, Any] = {"task": family, "preprocessing": PREPROCESSING}
    if family == "classification":
        options["labels"] = names
    elif family == "segmentation":
        options["labels"] = ("background", *names)
    elif family == "detection":
        options["labels"] = names
        options["anchors"] = default_anchors(size)
        options["head"] = {"box_coder": {"convention": "tf", "scales": list(BOX_SCALES)},
                           "score_activation": "sigmoid", "background_class": None, "score_threshold": 0.5,
                           "iou_threshold": 0.5, "max_detections": 20}
    return options
