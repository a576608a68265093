"""What of an int8 artifact runs in int8 on its target: int8 convolutions, Edge TPU ops, XNNPACK's int8 path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .build import StagedArtifact
    from .context import ConversionContext

__all__ = ["delegate_info", "int8_counts"]

_CONVS = ("Conv", "CONV_2D", "DEPTHWISE_CONV_2D", "ConvTranspose", "TRANSPOSE_CONV")


def int8_counts(path: str) -> tuple[int, int, int, int, list[Any]]:
    """``(int8 ops, compute ops, int8 convolutions, convolutions, ops in order)`` of a TFLite or ONNX QDQ file.

    A TFLite op is int8 when its first data input is an 8-bit tensor; an ONNX node when one of its inputs
    comes from a DequantizeLinear (QDQ form).

    Raises:
        ModelLoadError: the file cannot be read.
    """
    from targets.graph import INT8_DTYPES, read_graph

    graph = read_graph(path)
    if graph.format == "onnx":
        from ._env import import_onnx
        from .quant_debug_onnx import read_qdq

        qdq = read_qdq(import_onnx().load(path))
        int8_names = set(qdq.quantized_nodes)
        ops = [op for op in graph.ops if op.op_type not in ("QuantizeLinear", "DequantizeLinear", "Constant")]
        is_int8 = [op.name in int8_names for op in ops]
    else:
        ops = [op for op in graph.ops if any(not x.constant for x in op.inputs)
               and op.op_type not in ("QUANTIZE", "DEQUANTIZE")]
        is_int8 = [next((x.dtype in INT8_DTYPES for x in op.inputs if not x.constant), False) for op in ops]
    convs = [flag for op, flag in zip(ops, is_int8) if op.op_type in _CONVS]
    return sum(is_int8), len(ops), sum(convs), len(convs), list(zip(ops, is_int8))


def delegate_info(ctx: ConversionContext, staged: StagedArtifact) -> dict[str, Any]:
    """int8 op counts of *staged*, and for its target the Edge TPU ops or the ops off XNNPACK's int8 path.

    Edge TPU: ops the compiler mapped (its log) when it ran, else the ops before the first float op (the
    compiler maps a graph up to the first op it cannot run) with ``targets.check``'s problems. XNNPACK
    targets: the ops ``targets.check`` finds outside XNNPACK's delegated set.
    """
    int8, total, int8_conv, convs, ops = int8_counts(str(staged.path))
    info: dict[str, Any] = {"int8_ops": f"{int8}/{total}", "int8_convolutions": f"{int8_conv}/{convs}",
                            "int8_conv_share": round(int8_conv / convs, 4) if convs else None}
    name = ctx.plans.target_name
    if name is None:
        return info
    import targets

    target = targets.get(name)
    if staged.plan.edgetpu_compile:
        compiled = staged.edgetpu.info if staged.edgetpu is not None else {}
        if compiled.get("ops_on_edgetpu") is not None:
            info["edgetpu_ops"] = f"{compiled['ops_on_edgetpu']} (compiler log)"
        else:
            first_float = next((i for i, (_, flag) in enumerate(ops) if not flag), len(ops))
            problems = [p for p in targets.check(str(staged.path), target).problems if p.severity == "error"]
            info["edgetpu_ops"] = (f"{first_float}/{len(ops)} before the first float op (targets.check: "
                                   f"{len(problems)} error(s); edgetpu_compiler not run)")
    elif target.constraints.fast_ops == "xnnpack" and staged.plan.format == "tflite":
        off = [p.op for p in targets.check(str(staged.path), target).problems if p.code == "not-delegated"]
        info["xnnpack_not_delegated"] = off or "none"
    return info
