"""Which ONNX ops the converter accepts: derived from the runtime registry and the importer."""

from __future__ import annotations

from mace_cl.planning.ops.registry import supported_op_types

from mace_cl_converter.evaluate import numpy_ops
from mace_cl_converter.lowerings import lowered_op_types


def runtime_ops() -> list[str]:
    """ONNX ops accepted on run-time tensors (Constant and Cast-to-float32 included)."""
    return sorted(set(supported_op_types()) | set(lowered_op_types()))


def constant_only_ops() -> list[str]:
    """ONNX ops accepted only when every input is a constant (folded at conversion)."""
    return sorted(set(numpy_ops()) - set(runtime_ops()))


def describe() -> str:
    return (
        "supported ONNX ops: "
        + ", ".join(runtime_ops())
        + "; on constant inputs only (folded away): "
        + ", ".join(constant_only_ops())
        + " (any other op on constants is folded with onnx.reference)"
    )
