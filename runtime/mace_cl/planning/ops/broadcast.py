"""Operands broadcast to an output shape (numpy/ONNX multidirectional rules).

Used by element-wise style kernels that call ``load_operand`` from common.h.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mace_cl.planning.layout import broadcast_float_strides, pack_nhwc4
from mace_cl.planning.ops.base import ConstantArg, IntArg, KernelArg, OpPlan, PlanInput, Shape, TensorArg


@dataclass(frozen=True)
class BroadcastOperand:
    arg: KernelArg
    strides: tuple[int, int, int, int]  # float strides for the output's (n, c, h, w)

    @property
    def load_mode(self) -> str:
        """``LOAD_*`` macro (common.h) matching how the channel coordinate is read."""
        c_stride = self.strides[1]
        return "LOAD_VEC" if c_stride == 1 else "LOAD_SCALAR" if c_stride == 0 else "LOAD_GATHER"

    def stride_args(self) -> tuple[IntArg, IntArg, IntArg, IntArg]:
        n, c, h, w = self.strides
        return (IntArg(n), IntArg(c), IntArg(h), IntArg(w))


def broadcast_operand(plan: OpPlan, key: str, item: PlanInput, out_shape: Shape) -> BroadcastOperand:
    """Describe ``item`` read broadcast against ``out_shape``.

    A constant is packed into ``plan.constants[key]``. It is first given the output's
    rank (leading 1s) so that its channel axis lines up with the output's and the
    kernel can read whole float4 blocks (e.g. a [C,1,1] bias against [N,C,H,W]).
    """
    assert item.shape is not None
    if item.value is None:
        return BroadcastOperand(TensorArg(item.name), broadcast_float_strides(item.shape, out_shape))
    aligned_shape = (1,) * (len(out_shape) - len(item.shape)) + tuple(item.shape)
    plan.constants[key] = pack_nhwc4(item.value.reshape(aligned_shape))
    return BroadcastOperand(ConstantArg(key), broadcast_float_strides(aligned_shape, out_shape))


def broadcast_shapes(*shapes: Shape) -> Shape:
    """numpy broadcasting of shapes; raises ValueError naming them when impossible."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(
            "shapes " + ", ".join(str(list(s)) for s in shapes) + " cannot be broadcast together"
        ) from None
