"""One plan made of two others: the fallback of the internal ops that fuse two nodes
(SeparableConv, DepthwiseSqueezeExcite, GatherConv) on plans that cannot run them as one
launch. Each sub-plan's tensors are retargeted (the first one's output to a scratch buffer
or to the node's output, the second one's input to it) and the keys of one of them take a
prefix, so that the constants, scratch buffers and counters of the two cannot clash."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from mace_cl.planning.ops.base import (
    ConstantArg,
    CounterArg,
    KernelArg,
    OpPlan,
    ScratchArg,
    Shape,
)


def retargeted(plan: OpPlan, replacements: Mapping[KernelArg, KernelArg], prefix: str = "") -> OpPlan:
    """``plan`` with the launch arguments in ``replacements`` replaced and every other
    constant, scratch and counter key (in its arguments and its tables) prefixed; its
    aliases are kept (``chained`` refuses them)."""

    def moved(arg: KernelArg) -> KernelArg:
        if arg in replacements:
            return replacements[arg]
        if isinstance(arg, ConstantArg | ScratchArg | CounterArg):
            return replace(arg, key=prefix + arg.key)
        return arg

    return replace(
        plan,
        launches=[replace(launch, args=tuple(moved(arg) for arg in launch.args)) for launch in plan.launches],
        constants={prefix + key: value for key, value in plan.constants.items()},
        scratch_bytes={prefix + key: size for key, size in plan.scratch_bytes.items()},
        counters={prefix + key: count for key, count in plan.counters.items()},
        table_constants=frozenset(prefix + key for key in plan.table_constants),
    )


def chained(
    first: OpPlan, second: OpPlan, output_shapes: list[Shape], scratch_bytes: Mapping[str, int] | None = None
) -> OpPlan:
    """``first``'s launches then ``second``'s (already retargeted), with both plans'
    tables and ``scratch_bytes`` (the buffers that connect them)."""
    assert not first.aliases and not second.aliases
    extra = dict(scratch_bytes or {})
    for table in ("constants", "scratch_bytes", "counters"):
        clash = getattr(first, table).keys() & getattr(second, table).keys()
        assert not clash, f"chained plans share {table} keys {sorted(clash)}"
    assert not extra.keys() & (first.scratch_bytes.keys() | second.scratch_bytes.keys())
    return OpPlan(
        output_shapes=output_shapes,
        launches=[*first.launches, *second.launches],
        constants={**first.constants, **second.constants},
        scratch_bytes={**first.scratch_bytes, **second.scratch_bytes, **extra},
        counters={**first.counters, **second.counters},
        table_constants=first.table_constants | second.table_constants,
    )
