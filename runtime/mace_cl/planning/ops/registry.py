"""Op registry: op type -> plan function.

Op modules register their plan functions with ``@register_op("Type", ...)``, declaring
``needs_context=True`` when the function takes the ``PlanContext`` as a third argument,
and ``internal=True`` for ops that only the converter's passes write (they are not ONNX
ops: a model file may hold them, an ONNX file may not).
The registry imports the modules that ``mace_cl.planning.ops.OP_MODULES`` lists, on the
first lookup; a new op module is added to that list.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from mace_cl.model.graph import Node
from mace_cl.planning.layout import LayoutError
from mace_cl.planning.ops import OP_MODULES
from mace_cl.planning.ops.base import (
    INT32_MAX,
    SHAPES_CONTEXT,
    IntArg,
    OpError,
    OpPlan,
    PlanContext,
    PlanFn,
    PlanInput,
    check_output_size,
)
from mace_cl.planning.ops.op_inputs import with_moved_attributes


@dataclass(frozen=True)
class _Registration:
    plan: PlanFn
    needs_context: bool  # called as plan(node, inputs, context), else plan(node, inputs)
    internal: bool  # written by converter passes only, never accepted from ONNX


_REGISTERED: dict[str, _Registration] = {}
_loaded = False


def register_op(
    *op_types: str, needs_context: bool = False, internal: bool = False
) -> Callable[[PlanFn], PlanFn]:
    """Register the decorated plan function for ``op_types``.

    It is called as ``plan(node, inputs)``, or with ``needs_context=True`` (its choice of
    kernels depends on the target) as ``plan(node, inputs, context)``."""

    def decorate(plan: PlanFn) -> PlanFn:
        registration = _Registration(plan, needs_context, internal)
        for op_type in op_types:
            if op_type in _REGISTERED and _REGISTERED[op_type] != registration:
                raise RuntimeError(f"op type {op_type!r} is registered twice")
            _REGISTERED[op_type] = registration
        return plan

    return decorate


def _load_builtin_ops() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in OP_MODULES:
        importlib.import_module(f"mace_cl.planning.ops.{name}")


def needs_context(op_type: str) -> bool:
    """Whether ``op_type``'s plan function was registered with ``needs_context=True``."""
    _load_builtin_ops()
    return _REGISTERED[op_type].needs_context


def supported_op_types() -> list[str]:
    """The ONNX op types this runtime plans (internal ops left out)."""
    _load_builtin_ops()
    return sorted(op for op, registration in _REGISTERED.items() if not registration.internal)


def internal_op_types() -> list[str]:
    """Op types that converter passes write and an ONNX model may not use."""
    _load_builtin_ops()
    return sorted(op for op, registration in _REGISTERED.items() if registration.internal)


def planner_for(op_type: str) -> PlanFn | None:
    _load_builtin_ops()
    registration = _REGISTERED.get(op_type)
    return None if registration is None else registration.plan


def plan_node(node: Node, inputs: list[PlanInput], context: PlanContext | None = None) -> OpPlan:
    """Plan one node with the registered op implementation.

    ``context`` names the target device kind; None is for callers that only need output
    shapes (shape inference), which do not depend on it (planned as for "cpu")."""
    _load_builtin_ops()
    registration = _REGISTERED.get(node.op_type)
    if registration is None:
        raise OpError(
            node,
            f"op type {node.op_type!r} is not supported by this runtime; supported: "
            + ", ".join(supported_op_types()),
        )
    # Attributes of older opsets that newer ones take as inputs become those inputs here
    # (op_inputs.MOVED_TO_INPUTS), so plan functions read one form.
    node, inputs = with_moved_attributes(node, inputs)
    try:
        if registration.needs_context:
            plan = registration.plan(node, inputs, context or SHAPES_CONTEXT)
        else:
            plan = registration.plan(node, inputs)
    except LayoutError as exc:  # shape problems found by layout helpers, reported per node
        raise OpError(node, str(exc)) from exc
    if len(plan.output_shapes) != len(node.outputs):
        raise OpError(
            node,
            f"produces {len(plan.output_shapes)} outputs but the node lists {len(node.outputs)}",
        )
    _check_index_range(node, plan)
    return plan


def _check_index_range(node: Node, plan: OpPlan) -> None:
    """OpError naming the node when its plan does not fit the kernels' 32-bit arithmetic."""
    for output, shape in zip(node.outputs, plan.output_shapes, strict=True):
        check_output_size(node, output, shape)
    for launch in plan.launches:
        total = 1
        for size in launch.global_size:
            total *= size
        if total > INT32_MAX:
            raise OpError(node, f"kernel {launch.kernel} would need {total} work-items, over {INT32_MAX}")
        for arg in launch.args:
            if isinstance(arg, IntArg) and not -INT32_MAX - 1 <= arg.value <= INT32_MAX:
                raise OpError(
                    node,
                    f"kernel {launch.kernel} needs the value {arg.value}, which does not fit a "
                    "32-bit int; check the node's attributes (strides, pads, dilations, sizes)",
                )
