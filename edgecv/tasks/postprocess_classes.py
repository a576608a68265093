"""The number of classes a TFLite_Detection_PostProcess op reports, read from the model graph.

The op's outputs do not say how many classes there are; its ``num_classes`` option does (the score input
``[1, N, C + offset]`` may carry a background column the op skips, as TF Object Detection API SSDs do, or
none, as EfficientDet-Lite and Model Maker detectors do). Without the option, the score input's columns
less one (the op's own default layout). The Detector checks labels against that count.
"""

from __future__ import annotations

from ..errors import ModelLoadError
from ..model import Model

__all__ = ["postprocess_num_classes"]

_OP = "TFLite_Detection_PostProcess"


def postprocess_num_classes(model: Model) -> int | None:
    """Real classes of the model's TFLite_Detection_PostProcess op, or None when unknown (ONNX, no such op)."""
    if model.format != "tflite":
        return None
    from ..formats.tflite import read_tflite

    try:
        parsed = read_tflite(str(model.path))
    except ModelLoadError:
        return None
    for graph in parsed.subgraphs:
        for op in graph.operators:
            if not (op.custom and op.opcode == _OP):
                continue
            stated = (op.custom_options or {}).get("num_classes")
            if isinstance(stated, int) and not isinstance(stated, bool) and stated >= 1:
                return stated
            if len(op.inputs) >= 2 and 0 <= op.inputs[1] < len(graph.tensors):
                shape = graph.tensors[op.inputs[1]].shape
                if len(shape) >= 2 and shape[-1] >= 2:
                    return int(shape[-1]) - 1
    return None
