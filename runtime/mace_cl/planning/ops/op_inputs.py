"""Op parameters that ONNX gives as attributes in old opsets and as inputs in new ones.

``MOVED_TO_INPUTS`` is the one table of them (Split ``split``, Slice ``starts/ends/axes``,
Pad ``pads/value``, Clip ``min/max``, Upsample ``scales``, Squeeze/Unsqueeze and Reduce*
``axes``, Reshape ``shape``). Plan functions read these parameters from their inputs only
(``int_list``, ``float_list``, ``constant_input``), because two places move the attribute
form into the inputs by this table:

- the converter, for every ONNX node it imports (mace_cl_converter/lowerings.py): it stores
  the newest form, with the values as named graph constants, because its passes, its
  constant folding (onnx.reference at the newest opset) and the model file must see one
  form;
- the registry, for every node it plans (``plan_node`` calls ``with_moved_attributes``): a
  graph the converter did not make (built by hand, ``mace_cl.testing.run_node``) may still
  hold the attribute form. For converted graphs it changes nothing.

The table lives here, below the converter, because both use it (the converter imports the
runtime's planning, never the other way round). Changes of meaning between opsets (Softmax
before 13, Resize 10, Upsample, BatchNormalization) are not in it: only the converter knows
a model's opset, so its lowerings own those.

Inputs holding such parameters must be graph constants, because the runtime plans every
shape before it runs (no shape computation on the device).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mace_cl.model.graph import Node
from mace_cl.planning.layout import pack_nhwc4
from mace_cl.planning.ops.base import ConstantArg, KernelArg, OpError, OpPlan, PlanInput, TensorArg


@dataclass(frozen=True)
class MovedAttribute:
    """Attribute ``attr`` of older opsets is input ``index`` in newer ones."""

    attr: str
    index: int
    # "ints": a list of ints (one int counts as a list of one); "floats": a list of numbers;
    # "float": one number
    kind: Literal["ints", "floats", "float"]


_AXES = (MovedAttribute("axes", 1, "ints"),)

# Op type -> the attributes that newer opsets take as inputs (the opset that moved them).
MOVED_TO_INPUTS: dict[str, tuple[MovedAttribute, ...]] = {
    "Clip": (MovedAttribute("min", 1, "float"), MovedAttribute("max", 2, "float")),  # 11
    "Pad": (  # 11 (``paddings``: Pad-1's name for pads)
        MovedAttribute("pads", 1, "ints"),
        MovedAttribute("paddings", 1, "ints"),
        MovedAttribute("value", 2, "float"),
    ),
    "Reshape": (MovedAttribute("shape", 1, "ints"),),  # 5
    "Slice": (  # 10
        MovedAttribute("starts", 1, "ints"),
        MovedAttribute("ends", 2, "ints"),
        MovedAttribute("axes", 3, "ints"),
    ),
    "Split": (MovedAttribute("split", 1, "ints"),),  # 13
    "Squeeze": _AXES,  # 13
    "Unsqueeze": _AXES,  # 13
    "Upsample": (MovedAttribute("scales", 1, "floats"),),  # 9
    # ReduceSum 13, the others 18
    **{
        op_type: _AXES
        for op_type in (
            "ReduceMean",
            "ReduceSum",
            "ReduceMax",
            "ReduceMin",
            "ReduceProd",
            "ReduceL2",
            "ReduceL1",
            "ReduceSumSquare",
            "ReduceLogSum",
            "ReduceLogSumExp",
        )
    },
}


def with_moved_attributes(node: Node, inputs: list[PlanInput]) -> tuple[Node, list[PlanInput]]:
    """``node`` and its ``inputs`` in the newest opset's form: each attribute of
    ``MOVED_TO_INPUTS`` becomes the constant input it is in newer opsets. OpError when a
    parameter is given both ways or the attribute is malformed."""
    moved = [item for item in MOVED_TO_INPUTS.get(node.op_type, ()) if node.attrs.get(item.attr) is not None]
    if not moved:
        return node, inputs
    attrs = dict(node.attrs)
    inputs = list(inputs)
    for item in moved:
        raw = attrs.pop(item.attr)
        if item.index < len(inputs) and inputs[item.index].present:
            raise OpError(
                node, f"{item.attr} is given both as attribute {item.attr!r} and as input {item.index}"
            )
        value = _attribute_value(node, item, raw)
        inputs += [PlanInput("", None)] * (item.index + 1 - len(inputs))
        inputs[item.index] = PlanInput(f"{node.name}_{item.attr}", tuple(value.shape), value)
    return Node(node.op_type, node.name, node.inputs, node.outputs, attrs), inputs


def _attribute_value(node: Node, item: MovedAttribute, raw: object) -> np.ndarray:
    """The attribute's value as the input would hold it (float64 keeps it as given)."""
    items = raw if isinstance(raw, list) else [raw]
    if item.kind == "ints":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise OpError(node, f"attribute {item.attr!r} must be a list of ints, got {raw!r}")
        return np.asarray(items, dtype=np.int64)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items)
    if item.kind == "float" and (isinstance(raw, list) or not numbers):
        raise OpError(node, f"attribute {item.attr!r} must be a number, got {raw!r}")
    if not numbers:
        raise OpError(node, f"attribute {item.attr!r} must be a list of numbers, got {raw!r}")
    return np.asarray(raw, dtype=np.float64)


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


def int_list(node: Node, inputs: list[PlanInput], index: int, what: str) -> list[int] | None:
    """Integers from constant input ``index``; None if it is absent."""
    value = constant_input(node, inputs, index, what)
    if value is None:
        return None
    if value.dtype.kind not in "iu":
        raise OpError(node, f"input {index} ({what}) must hold integers, got dtype {value.dtype}")
    return [int(v) for v in value.reshape(-1)]


def attr_ints(node: Node, attr: str) -> list[int] | None:
    """A list-of-ints attribute (a single int counts as a list of one); None if absent."""
    raw = node.attrs.get(attr)
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise OpError(node, f"attribute {attr!r} must be a list of ints, got {raw!r}")
    return [int(v) for v in items]


def float_list(node: Node, inputs: list[PlanInput], index: int, what: str) -> list[float] | None:
    """Floats from constant input ``index``; None if it is absent or empty."""
    value = constant_input(node, inputs, index, what)
    if value is None:
        return None
    return [float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1)] or None


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
