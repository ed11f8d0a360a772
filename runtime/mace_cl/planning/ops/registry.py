"""Op registry: op type -> plan function.

Op modules in this package register themselves with ``@register_op("Type", ...)``.
They are imported lazily on first lookup, so adding an op means adding a module here
and nothing else.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable

from mace_cl.model.graph import Node
from mace_cl.planning.layout import LayoutError
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

_PLANNERS: dict[str, PlanFn] = {}
# Plan functions that take the PlanContext as a third parameter.
_WANTS_CONTEXT: set[PlanFn] = set()
_loaded = False


def register_op(*op_types: str) -> Callable[[PlanFn], PlanFn]:
    def decorate(plan: PlanFn) -> PlanFn:
        for op_type in op_types:
            if op_type in _PLANNERS and _PLANNERS[op_type] is not plan:
                raise RuntimeError(f"op type {op_type!r} is registered twice")
            _PLANNERS[op_type] = plan
        if len(inspect.signature(plan).parameters) >= 3:
            _WANTS_CONTEXT.add(plan)
        return plan

    return decorate


def _load_builtin_ops() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module("mace_cl.planning.ops")
    for module in pkgutil.iter_modules(package.__path__):
        # Helper modules (base, broadcast, ...) are imported too; they register nothing.
        if not module.name.startswith("_"):
            importlib.import_module(f"mace_cl.planning.ops.{module.name}")


def supported_op_types() -> list[str]:
    _load_builtin_ops()
    return sorted(_PLANNERS)


def planner_for(op_type: str) -> PlanFn | None:
    _load_builtin_ops()
    return _PLANNERS.get(op_type)


def plan_node(node: Node, inputs: list[PlanInput], context: PlanContext | None = None) -> OpPlan:
    """Plan one node with the registered op implementation.

    ``context`` names the target device kind; None is for callers that only need output
    shapes (shape inference), which do not depend on it (planned as for "cpu")."""
    planner = planner_for(node.op_type)
    if planner is None:
        raise OpError(
            node,
            f"op type {node.op_type!r} is not supported by this runtime; supported: "
            + ", ".join(supported_op_types()),
        )
    try:
        if planner in _WANTS_CONTEXT:
            plan = planner(node, inputs, context or SHAPES_CONTEXT)
        else:
            plan = planner(node, inputs)
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
