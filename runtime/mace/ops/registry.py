"""Op registry: op type -> plan function.

Op modules in this package register themselves with ``@register_op("Type", ...)``.
They are imported lazily on first lookup, so adding an op means adding a module here
and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from mace.graph import Node
from mace.layout import LayoutError
from mace.ops.base import OpError, OpPlan, PlanFn, PlanInput

_PLANNERS: dict[str, PlanFn] = {}
_loaded = False


def register_op(*op_types: str) -> Callable[[PlanFn], PlanFn]:
    def decorate(plan: PlanFn) -> PlanFn:
        for op_type in op_types:
            if op_type in _PLANNERS and _PLANNERS[op_type] is not plan:
                raise RuntimeError(f"op type {op_type!r} is registered twice")
            _PLANNERS[op_type] = plan
        return plan

    return decorate


def _load_builtin_ops() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module("mace.ops")
    for module in pkgutil.iter_modules(package.__path__):
        # Helper modules (base, broadcast, ...) are imported too; they register nothing.
        if not module.name.startswith("_"):
            importlib.import_module(f"mace.ops.{module.name}")


def supported_op_types() -> list[str]:
    _load_builtin_ops()
    return sorted(_PLANNERS)


def planner_for(op_type: str) -> PlanFn | None:
    _load_builtin_ops()
    return _PLANNERS.get(op_type)


def plan_node(node: Node, inputs: list[PlanInput]) -> OpPlan:
    """Plan one node with the registered op implementation."""
    planner = planner_for(node.op_type)
    if planner is None:
        raise OpError(
            node,
            f"op type {node.op_type!r} is not supported by this runtime; supported: "
            + ", ".join(supported_op_types()),
        )
    try:
        plan = planner(node, inputs)
    except (
        LayoutError
    ) as exc:  # shape problems found by layout helpers, reported per node
        raise OpError(node, str(exc)) from exc
    if len(plan.output_shapes) != len(node.outputs):
        raise OpError(
            node,
            f"produces {len(plan.output_shapes)} outputs but the node lists {len(node.outputs)}",
        )
    return plan
