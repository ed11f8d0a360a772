"""Reshape, Flatten, Squeeze, Unsqueeze, Dropout -> kernels/copy.cl.

All of them keep the elements and their row-major (NCHW) order and only change the
logical shape. When the old and new shapes have the same stored NHWC4 view (e.g.
``[N, C]`` <-> ``[N, C, 1, 1]``, the Flatten in front of a classifier) the output is the
input's buffer (``OpPlan.aliases``): no launch, no copy. Otherwise ``reshape_copy`` sends
every element through its flat logical index, because NHWC4 memory order differs from
NCHW order (docs/memory_layout.md).
Dropout at inference is the identity; its optional mask output is not supported.
(Identity itself is the activation "none" in ops/activation.py.)
"""

from __future__ import annotations

import math

from mace_cl.model.graph import Node
from mace_cl.planning.layout import MAX_RANK, as_nchw4
from mace_cl.planning.ops.base import OpError, OpPlan, OutputArg, PlanInput, Shape, attr_int
from mace_cl.planning.ops.copy_kernels import reshape_launch
from mace_cl.planning.ops.op_inputs import constant_input, data_arg, input_shape, int_list, normalize_axes
from mace_cl.planning.ops.registry import register_op


def _copy_plan(node: Node, item: PlanInput, out_shape: Shape) -> OpPlan:
    in_shape = input_shape(node, item)
    if len(out_shape) > MAX_RANK:
        raise OpError(
            node,
            f"the output shape {list(out_shape)} has rank {len(out_shape)}; at most {MAX_RANK} is supported",
        )
    if math.prod(out_shape) != math.prod(in_shape):
        raise OpError(
            node, f"cannot reshape {list(in_shape)} ({math.prod(in_shape)} elements) to {list(out_shape)}"
        )
    if as_nchw4(out_shape) == as_nchw4(tuple(in_shape)) and not item.is_constant:
        return OpPlan(output_shapes=[out_shape], aliases={0: 0})
    plan = OpPlan(output_shapes=[out_shape])
    plan.launches.append(reshape_launch(OutputArg(0), out_shape, data_arg(plan, "input", item), in_shape))
    return plan


def _data(node: Node, inputs: list[PlanInput]) -> PlanInput:
    if not inputs or not inputs[0].present:
        raise OpError(node, "the data input is required")
    return inputs[0]


@register_op("Dropout")
def plan_dropout(node: Node, inputs: list[PlanInput]) -> OpPlan:
    item = _data(node, inputs)
    if len(node.outputs) > 1 and node.outputs[1]:
        raise OpError(
            node, "the mask output of Dropout is not supported at inference; drop it from the model"
        )
    training = constant_input(node, inputs, 2, "training_mode")
    if training is not None and bool(training.reshape(-1)[0]):
        raise OpError(node, "training_mode is true; only inference (identity) Dropout is supported")
    plan = _copy_plan(node, item, input_shape(node, item))
    plan.output_shapes *= len(node.outputs)  # an omitted mask output still needs a shape entry
    return plan


@register_op("Reshape")
def plan_reshape(node: Node, inputs: list[PlanInput]) -> OpPlan:
    item = _data(node, inputs)
    in_shape = input_shape(node, item)
    requested = int_list(node, inputs, 1, "target shape")
    if requested is None:
        raise OpError(node, "the target shape is required (input 1, or attribute 'shape' before opset 5)")
    allow_zero = attr_int(node, "allowzero", 0) == 1
    if allow_zero and 0 in requested:
        raise OpError(
            node, f"shape {requested} with allowzero=1 asks for an empty tensor, which is not supported"
        )
    out = [in_shape[i] if d == 0 and i < len(in_shape) else d for i, d in enumerate(requested)]
    if 0 in out:
        raise OpError(node, f"shape {requested} copies a dimension (0) past the input's rank {len(in_shape)}")
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise OpError(node, f"shape {requested} may contain at most one -1 and no other negative values")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if math.prod(in_shape) % known:
            raise OpError(
                node, f"cannot reshape {list(in_shape)} to {requested}: the -1 dimension is not whole"
            )
        out[out.index(-1)] = math.prod(in_shape) // known
    return _copy_plan(node, item, tuple(out))


@register_op("Flatten")
def plan_flatten(node: Node, inputs: list[PlanInput]) -> OpPlan:
    item = _data(node, inputs)
    shape = input_shape(node, item)
    axis = attr_int(node, "axis", 1)
    if not -len(shape) <= axis <= len(shape):
        raise OpError(node, f"axis {axis} is out of range for an input of rank {len(shape)}")
    axis = axis + len(shape) if axis < 0 else axis
    return _copy_plan(node, item, (math.prod(shape[:axis]), math.prod(shape[axis:])))


@register_op("Squeeze")
def plan_squeeze(node: Node, inputs: list[PlanInput]) -> OpPlan:
    item = _data(node, inputs)
    shape = input_shape(node, item)
    axes = int_list(node, inputs, 1, "axes")
    if not axes:  # absent or empty: every size-1 axis
        squeezed = [i for i, d in enumerate(shape) if d == 1]
    else:
        squeezed = normalize_axes(node, axes, len(shape))
        not_one = [axis for axis in squeezed if shape[axis] != 1]
        if not_one:
            raise OpError(
                node, f"axes {not_one} of shape {list(shape)} have size other than 1 and cannot be squeezed"
            )
    return _copy_plan(node, item, tuple(d for i, d in enumerate(shape) if i not in squeezed))


@register_op("Unsqueeze")
def plan_unsqueeze(node: Node, inputs: list[PlanInput]) -> OpPlan:
    item = _data(node, inputs)
    shape = input_shape(node, item)
    axes = int_list(node, inputs, 1, "axes")
    if axes is None:
        raise OpError(node, "axes are required (input 1 from opset 13, attribute 'axes' before)")
    out_rank = len(shape) + len(axes)
    inserted = set(normalize_axes(node, axes, out_rank))
    rest = iter(shape)
    return _copy_plan(node, item, tuple(1 if i in inserted else next(rest) for i in range(out_rank)))
