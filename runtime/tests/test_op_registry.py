"""The op registry's explicit declarations: which modules register ops, and which plan
functions take the PlanContext.

``mace_cl.planning.ops.OP_MODULES`` is the list the registry imports; a module added to the
folder but not to that list (or to ``HELPER_MODULES``) would silently register nothing.
``register_op(..., needs_context=True)`` replaces looking at a plan function's parameters;
the declaration must still agree with them, or the context would be dropped (or a third
argument passed to a function without one).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.planning import ops
from mace_cl.planning.ops import registry


def _modules_in_folder() -> set[str]:
    folder = Path(ops.__file__).parent
    return {path.stem for path in folder.glob("*.py") if path.stem != "__init__"}


def test_every_module_of_the_folder_is_listed_once() -> None:
    listed = [*ops.OP_MODULES, *ops.HELPER_MODULES]
    assert len(listed) == len(set(listed)), "a module is listed twice"
    in_folder = _modules_in_folder()
    assert len(in_folder) > 20, f"op modules not found next to {ops.__file__}"
    missing = sorted(in_folder - set(listed))
    assert not missing, (
        f"modules {missing} of mace_cl/planning/ops are in neither OP_MODULES nor HELPER_MODULES "
        "(mace_cl/planning/ops/__init__.py): the registry would never import an op module left out"
    )
    assert not sorted(set(listed) - in_folder), "a listed module does not exist"


def test_op_modules_register_and_helpers_do_not() -> None:
    registering = {
        registry.planner_for(op_type).__module__.rpartition(".")[2]
        for op_type in [*registry.supported_op_types(), *registry.internal_op_types()]
    }
    assert registering == set(ops.OP_MODULES)
    assert not registering & set(ops.HELPER_MODULES)


def test_internal_ops_are_not_listed_as_onnx_ops() -> None:
    internal = registry.internal_op_types()
    assert "ChannelGather" in internal
    assert not set(internal) & set(registry.supported_op_types())
    assert all(registry.planner_for(op_type) is not None for op_type in internal)


@pytest.mark.parametrize("op_type", [*registry.supported_op_types(), *registry.internal_op_types()])
def test_needs_context_matches_the_plan_function(op_type: str) -> None:
    plan = registry.planner_for(op_type)
    assert plan is not None
    parameters = inspect.signature(plan).parameters
    assert len(parameters) in (2, 3)
    assert registry.needs_context(op_type) == (len(parameters) == 3), (
        f"{op_type}: {plan.__qualname__} takes {list(parameters)}; register it with "
        f"needs_context={len(parameters) == 3}"
    )


def test_registering_an_op_type_twice_differently_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    registry.supported_op_types()  # loads the op modules before the registry is swapped
    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))

    def plan(node: object, inputs: object) -> None:
        raise AssertionError("not called")

    registry.register_op("TestOp")(plan)
    registry.register_op("TestOp")(plan)  # the same registration again: fine
    with pytest.raises(RuntimeError, match="registered twice"):
        registry.register_op("TestOp", needs_context=True)(plan)
    with pytest.raises(RuntimeError, match="registered twice"):
        registry.register_op("Conv", needs_context=True)(plan)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
