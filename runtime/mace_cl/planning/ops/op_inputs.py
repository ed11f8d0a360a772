"""Reading op parameters that ONNX gives as attributes in old opsets and as inputs in new ones.

Split ``split``, Slice ``starts/ends/axes/steps``, Pad ``pads/constant_value/axes``, Resize
``scales/sizes``, Squeeze/Unsqueeze ``axes``, Reduce* ``axes``, Reshape ``shape``: when
they are inputs they must be graph constants, because the runtime plans every shape
before it runs (no shape computation on the device).
"""

from __future__ import annotations

import numpy as np

from mace_cl.model.graph import Node
from mace_cl.planning.layout import pack_nhwc4
from mace_cl.planning.ops.base import ConstantArg, KernelArg, OpError, OpPlan, PlanInput, TensorArg


def constant_input(node: Node, inputs: list[PlanInput], index: int, what: str) -> np.ndarray | None:
    """Value of input ``index``; None when absent or omitted; OpError when computed at run time."""
    if index >= len(inputs) or not inputs[index].present:
        return None
    item = inputs[index]
    if item.value is None:
        raise OpError(
            node,
            f"input {index} ({what}) is computed at run time; it must be a graph constant "
            "(fold shape computations into constants when converting the model)",
        )
    return item.value


def int_list(
    node: Node, inputs: list[PlanInput], index: int, attr: str, what: str | None = None
) -> list[int] | None:
    """Integers from input ``index`` (newer opsets) or attribute ``attr`` (older); None if neither."""
    value = constant_input(node, inputs, index, what or attr)
    if value is not None:
        if node.attrs.get(attr) is not None:
            raise OpError(node, f"{what or attr} is given both as attribute {attr!r} and as input {index}")
        if value.dtype.kind not in "iu":
            raise OpError(node, f"input {index} ({what or attr}) must hold integers, got dtype {value.dtype}")
        return [int(v) for v in value.reshape(-1)]
    return attr_ints(node, attr)


def attr_ints(node: Node, attr: str) -> list[int] | None:
    """A list-of-ints attribute (a single int counts as a list of one); None if absent."""
    raw = node.attrs.get(attr)
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise OpError(node, f"attribute {attr!r} must be a list of ints, got {raw!r}")
    return [int(v) for v in items]


def float_list(
    node: Node, inputs: list[PlanInput], index: int, attr: str, what: str | None = None
) -> list[float] | None:
    """Floats from input ``index`` or attribute ``attr``; None if neither (or the input is empty)."""
    value = constant_input(node, inputs, index, what or attr)
    if value is not None:
        return [float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1)] or None
    raw = node.attrs.get(attr)
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        raise OpError(node, f"attribute {attr!r} must be a list of numbers, got {raw!r}")
    return [float(v) for v in items]


def normalize_axis(node: Node, axis: int, rank: int, what: str = "axis") -> int:
    """ONNX axis in [-rank, rank) -> [0, rank)."""
    if not -rank <= axis < rank:
        raise OpError(node, f"{what} {axis} is out of range for an input of rank {rank}")
    return axis % rank


def normalize_axes(node: Node, axes: list[int], rank: int, what: str = "axes") -> list[int]:
    """Distinct axes in [0, rank), in the order given."""
    result = [normalize_axis(node, axis, rank, what) for axis in axes]
    if len(set(result)) != len(result):
        raise OpError(node, f"{what} {axes} name the same axis twice")
    return result


def input_shape(node: Node, item: PlanInput, what: str = "data input") -> tuple[int, ...]:
    if item.shape is None:
        raise OpError(node, f"the {what} is required but omitted")
    return tuple(item.shape)


def runtime_input(node: Node, item: PlanInput) -> PlanInput:
    """``item`` (input 0), which must be a tensor computed at run time."""
    if item.value is not None:
        raise OpError(node, "input 0 is a constant; fold constant subgraphs in the converter")
    return item


def data_arg(plan: OpPlan, key: str, item: PlanInput) -> KernelArg:
    """Kernel argument reading ``item`` as an NHWC4 tensor; a constant is packed into ``plan``."""
    if item.value is None:
        return TensorArg(item.name)
    plan.constants[key] = pack_nhwc4(np.asarray(item.value, dtype=np.float32))
    return ConstantArg(key)
