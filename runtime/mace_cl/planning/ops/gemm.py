"""MatMul and Gemm -> kernels/gemm.cl, or conv2d.cl's 1x1 path for fully-connected layers.

Two paths:

- **Fully connected**: a run-time 2-D ``A [rows, K]`` (not transposed) times a constant
  2-D ``B``, plus (Gemm) a constant ``C`` that is one value per output column. This is
  what CNN classifier heads export (often after Flatten). In NHWC4 ``A`` is ``rows``
  pixels of ``K`` channels, so the node runs as a 1x1 convolution
  (``pointwise_o16_launch`` in ops/conv_kernels.py; on GPUs ``gpu_pointwise_launch``, a
  work-group reduction per output block for few rows) with ``alpha * B`` packed as a
  ``[N, K, 1, 1]`` Conv filter and ``beta * C`` as its bias.
- **General** (``matmul`` in gemm.cl): any other MatMul/Gemm. Every operand is read
  through float strides of its own NHWC4 storage, so transposes, 1-D operands and
  batch broadcasting need no data movement. MatMul follows numpy: 1-D ``A`` is a row
  vector, 1-D ``B`` a column vector (the added axis is dropped from the result), batch
  axes broadcast. The result must have rank <= 4 (the runtime's limit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape, nchw4_axis, pack_nhwc4
from mace_cl.planning.ops.base import (
    SHAPES_CONTEXT,
    ConstantArg,
    FloatArg,
    IntArg,
    KernelArg,
    KernelLaunch,
    OpError,
    OpPlan,
    OutputArg,
    PlanContext,
    PlanInput,
    Shape,
    TensorArg,
    attr_float,
    attr_int,
    expect_input_count,
)
from mace_cl.planning.ops.broadcast import BroadcastOperand, broadcast_operand, broadcast_shapes
from mace_cl.planning.ops.conv_kernels import (
    gpu_pointwise_launch,
    o16_padded_bias,
    pack_o16_filter,
    pointwise_o16_launch,
)
from mace_cl.planning.ops.fused_activation import Activation, fused_activation
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.program_spec import ProgramSpec

# Output axis roles: "m" (rows of A), "n" (columns of B) or an int i (batch axis i).
Role = str | int


@dataclass(frozen=True)
class MatrixOperand:
    """One MatMul/Gemm operand as the ``matmul`` kernel reads it."""

    arg: KernelArg
    shape: Shape
    matrix_axes: dict[str, int]  # "m"/"n"/"k" -> axis of ``shape``
    batch_axes: tuple[int, ...]  # the remaining axes, outermost first

    def axis_stride(self, axis: int) -> int:
        """Float stride of logical ``axis`` in this operand's NHWC4 buffer (0 if size 1)."""
        if self.shape[axis] == 1:
            return 0
        strides = Nhwc4Shape.of(self.shape).float_strides()
        return strides[nchw4_axis(len(self.shape), axis)]

    def role_stride(self, role: Role, batch_rank: int) -> int:
        if isinstance(role, str):
            axis = self.matrix_axes.get(role)
            return 0 if axis is None else self.axis_stride(axis)
        # Batch axes align to the right of the broadcast batch shape.
        offset = batch_rank - len(self.batch_axes)
        return 0 if role < offset else self.axis_stride(self.batch_axes[role - offset])

    def batch_shape(self) -> Shape:
        return tuple(self.shape[axis] for axis in self.batch_axes)


def _operand(key: str, item: PlanInput, roles: tuple[str, ...]) -> MatrixOperand:
    """``roles`` names the last len(roles) axes of ``item``; earlier axes are batch axes.
    A constant is read from ``plan.constants[key]`` (see ``_upload_constants``)."""
    assert item.shape is not None
    rank = len(item.shape)
    arg: KernelArg = TensorArg(item.name) if item.value is None else ConstantArg(key)
    matrix_axes = {role: rank - len(roles) + i for i, role in enumerate(roles)}
    return MatrixOperand(arg, tuple(item.shape), matrix_axes, tuple(range(rank - len(roles))))


def _upload_constants(plan: OpPlan, operands: dict[str, PlanInput]) -> None:
    """Constant operands of the general path keep their logical shape, packed as NHWC4."""
    for key, item in operands.items():
        if item.value is not None:
            plan.constants[key] = pack_nhwc4(np.asarray(item.value, dtype=np.float32))


def _strides(operand: MatrixOperand, out_roles: list[Role], batch_rank: int) -> list[IntArg]:
    """Per stored output coordinate (n, c, h, w): the operand's float stride."""
    strides = [0, 0, 0, 0]
    for axis, role in enumerate(out_roles):
        strides[nchw4_axis(len(out_roles), axis)] = operand.role_stride(role, batch_rank)
    return [IntArg(v) for v in strides]


def _general_launch(
    a: MatrixOperand,
    b: MatrixOperand,
    c: BroadcastOperand,
    out_shape: Shape,
    out_roles: list[Role],
    batch_rank: int,
    alpha: float,
    beta: float,
    activation: Activation,
) -> KernelLaunch:
    depth = a.shape[a.matrix_axes["k"]]
    geo = Nhwc4Shape.of(out_shape)
    return KernelLaunch(
        ProgramSpec("gemm", activation.build_options()),
        "matmul",
        (geo.c4, geo.w, geo.n * geo.h),
        (
            OutputArg(0),
            a.arg,
            b.arg,
            c.arg,
            IntArg(geo.h),
            IntArg(geo.w),
            IntArg(geo.c),
            IntArg(depth),
            *_strides(a, out_roles, batch_rank),
            IntArg(a.axis_stride(a.matrix_axes["k"])),
            *_strides(b, out_roles, batch_rank),
            IntArg(b.axis_stride(b.matrix_axes["k"])),
            *c.stride_args(),
            FloatArg(alpha),
            FloatArg(beta),
            *activation.kernel_args(),
        ),
    )


def _no_addend(plan: OpPlan) -> BroadcastOperand:
    """A zero read with all strides 0: no C (beta * 0 keeps the kernel branch-free)."""
    plan.constants["zero"] = np.zeros(4, np.float32)
    return BroadcastOperand(ConstantArg("zero"), (0, 0, 0, 0))


def _fully_connected(
    plan: OpPlan,
    a: PlanInput,
    weights_nk: np.ndarray,
    bias: np.ndarray,
    activation: Activation,
    context: PlanContext,
) -> KernelLaunch:
    assert a.shape is not None
    out_c, depth = weights_nk.shape
    if context.gpu:
        packed_bias = np.zeros(-(-out_c // 4) * 4, np.float32)
        packed_bias[:out_c] = bias
        plan.constants["bias"] = packed_bias
        return gpu_pointwise_launch(
            plan,
            TensorArg(a.name),
            ConstantArg("bias"),
            weights_nk.reshape(out_c, depth, 1, 1),
            a.shape[0],
            activation,
        )
    plan.constants["filter"] = pack_o16_filter(weights_nk.reshape(out_c, depth, 1, 1))
    plan.constants["bias"] = o16_padded_bias(bias)
    return pointwise_o16_launch(TensorArg(a.name), a.shape[0], depth, out_c, activation)


def _checked_inputs(node: Node, inputs: list[PlanInput], low: int, high: int) -> None:
    expect_input_count(node, inputs, low, high)
    for index, item in enumerate(inputs[:2]):
        if item.shape is None or len(item.shape) == 0:
            raise OpError(node, f"input {index} must have at least one axis, got a scalar")


@register_op("MatMul", needs_context=True)
def plan_matmul(node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT) -> OpPlan:
    _checked_inputs(node, inputs, 2, 2)
    a_item, b_item = inputs
    assert a_item.shape is not None and b_item.shape is not None
    if a_item.is_constant and b_item.is_constant:
        raise OpError(node, "both inputs are constants; fold constant subgraphs in the converter")
    plan = OpPlan(output_shapes=[])
    activation = fused_activation(node)
    a = _operand("a", a_item, ("k",) if len(a_item.shape) == 1 else ("m", "k"))
    b = _operand("b", b_item, ("k",) if len(b_item.shape) == 1 else ("k", "n"))
    depth = a.shape[a.matrix_axes["k"]]
    if b.shape[b.matrix_axes["k"]] != depth:
        raise OpError(node, f"inner dimensions differ: A {list(a.shape)} and B {list(b.shape)}")
    try:
        batch = broadcast_shapes(a.batch_shape(), b.batch_shape())
    except ValueError as exc:
        raise OpError(node, f"batch axes: {exc}") from None
    out_roles: list[Role] = list(range(len(batch)))
    out_shape = list(batch)
    if "m" in a.matrix_axes:
        out_roles.append("m")
        out_shape.append(a.shape[a.matrix_axes["m"]])
    if "n" in b.matrix_axes:
        out_roles.append("n")
        out_shape.append(b.shape[b.matrix_axes["n"]])
    if len(out_shape) > 4:
        raise OpError(node, f"the result would have rank {len(out_shape)}; at most 4 is supported")
    plan.output_shapes.append(tuple(out_shape))

    if len(a.shape) == 2 and not a_item.is_constant and len(b.shape) == 2 and b_item.value is not None:
        weights = np.asarray(b_item.value, dtype=np.float32).T
        plan.launches.append(
            _fully_connected(plan, a_item, weights, np.zeros(weights.shape[0]), activation, context)
        )
        return plan
    _upload_constants(plan, {"a": a_item, "b": b_item})
    c = _no_addend(plan)
    plan.launches.append(
        _general_launch(a, b, c, tuple(out_shape), out_roles, len(batch), 1.0, 0.0, activation)
    )
    return plan


def _column_bias(c_item: PlanInput | None, columns: int) -> np.ndarray | None:
    """C as one value per output column when it is a constant of that form, else None."""
    if c_item is None or not c_item.present:
        return np.zeros(columns, np.float32)
    value = c_item.value
    if value is None or value.ndim > 2 or (value.ndim == 2 and value.shape[0] != 1):
        return None
    flat = value.reshape(-1)
    if flat.size not in (1, columns):
        return None
    return np.broadcast_to(flat, (columns,)).astype(np.float32)


@register_op("Gemm", needs_context=True)
def plan_gemm(node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT) -> OpPlan:
    _checked_inputs(node, inputs, 2, 3)
    a_item, b_item = inputs[0], inputs[1]
    c_item = inputs[2] if len(inputs) > 2 and inputs[2].present else None
    assert a_item.shape is not None and b_item.shape is not None
    if len(a_item.shape) != 2 or len(b_item.shape) != 2:
        raise OpError(
            node,
            f"A and B must be 2-D, got {list(a_item.shape)} and {list(b_item.shape)}; use MatMul for batches",
        )
    if a_item.is_constant and b_item.is_constant:
        raise OpError(node, "A and B are both constants; fold constant subgraphs in the converter")
    alpha = attr_float(node, "alpha", 1.0)
    beta = attr_float(node, "beta", 1.0)
    trans_a, trans_b = attr_int(node, "transA", 0), attr_int(node, "transB", 0)
    if trans_a not in (0, 1) or trans_b not in (0, 1):
        raise OpError(node, f"transA and transB must be 0 or 1, got {trans_a} and {trans_b}")
    plan = OpPlan(output_shapes=[])
    a = _operand("a", a_item, ("k", "m") if trans_a else ("m", "k"))
    b = _operand("b", b_item, ("n", "k") if trans_b else ("k", "n"))
    rows, depth = a.shape[a.matrix_axes["m"]], a.shape[a.matrix_axes["k"]]
    columns = b.shape[b.matrix_axes["n"]]
    if b.shape[b.matrix_axes["k"]] != depth:
        raise OpError(
            node,
            f"inner dimensions differ: A {list(a.shape)} (transA={trans_a}) and B {list(b.shape)} (transB={trans_b})",
        )
    out_shape = (rows, columns)
    if c_item is not None:
        assert c_item.shape is not None
        try:
            if broadcast_shapes(c_item.shape, out_shape) != out_shape:
                raise ValueError(f"C {list(c_item.shape)} is larger than the result {list(out_shape)}")
        except ValueError as exc:
            raise OpError(node, f"C cannot be broadcast to the result: {exc}") from None
    plan.output_shapes.append(out_shape)
    activation = fused_activation(node)

    column_bias = _column_bias(c_item, columns)
    if not trans_a and not a_item.is_constant and b_item.value is not None and column_bias is not None:
        weights = np.asarray(b_item.value, dtype=np.float32)
        weights_nk = alpha * (weights if trans_b else weights.T)
        plan.launches.append(
            _fully_connected(plan, a_item, weights_nk, beta * column_bias, activation, context)
        )
        return plan
    _upload_constants(plan, {"a": a_item, "b": b_item})
    c = _no_addend(plan) if c_item is None else broadcast_operand(plan, "c", c_item, out_shape)
    plan.launches.append(
        _general_launch(
            a, b, c, out_shape, ["m", "n"], 0, alpha, beta if c_item is not None else 0.0, activation
        )
    )
    return plan
