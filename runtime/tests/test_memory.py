"""mace_cl.planning.memory: buffer reuse plan (pure, no OpenCL)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.planning.memory import MemoryPlan, Step, plan_memory


def _live_intervals(steps: list[Step], inputs: list[str], outputs: list[str]) -> dict[str, tuple[int, int]]:
    """Closed [first, last] step interval in which each tensor must keep its value.

    A tensor written at step i and one last read at step i are both live at i, so they
    must not share a buffer (a node never writes into its own input).
    """
    start = {name: -1 for name in inputs}
    for i, step in enumerate(steps):
        for name in (*step.writes, *step.scratch):
            start[name] = i
    end = dict(start)
    for i, step in enumerate(steps):
        for name in step.reads:
            end[name] = i
    for name in outputs:
        end[name] = len(steps)
    return {name: (start[name], end[name]) for name in start}


def _assert_valid(
    plan: MemoryPlan,
    steps: list[Step],
    sizes: dict[str, int],
    inputs: list[str],
    outputs: list[str],
) -> None:
    live = _live_intervals(steps, inputs, outputs)
    assert set(plan.assignment) == set(sizes)
    for name, buffer in plan.assignment.items():
        assert plan.buffer_sizes[buffer] >= sizes[name], f"{name} does not fit its buffer"
    names = sorted(live)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if plan.assignment[a] != plan.assignment[b]:
                continue
            (a0, a1), (b0, b1) = live[a], live[b]
            assert a1 < b0 or b1 < a0, f"{a} {live[a]} and {b} {live[b]} share buffer {plan.assignment[a]}"


def test_chain_reuses_two_buffers() -> None:
    steps = [
        Step(("x",), ("t1",)),
        Step(("t1",), ("t2",)),
        Step(("t2",), ("t3",)),
        Step(("t3",), ("y",)),
    ]
    sizes = dict.fromkeys(["x", "t1", "t2", "t3", "y"], 64)
    plan = plan_memory(steps, sizes, ["x"], ["y"])
    _assert_valid(plan, steps, sizes, ["x"], ["y"])
    assert len(plan.buffer_sizes) == 2
    assert plan.total_bytes == 128


def test_skip_connection_keeps_its_buffer() -> None:
    steps = [
        Step(("x",), ("a",)),
        Step(("a",), ("b",)),
        Step(("b",), ("c",)),
        Step(("c", "a"), ("y",)),
    ]
    sizes = dict.fromkeys(["x", "a", "b", "c", "y"], 16)
    plan = plan_memory(steps, sizes, ["x"], ["y"])
    _assert_valid(plan, steps, sizes, ["x"], ["y"])
    assert plan.assignment["a"] not in {plan.assignment["b"], plan.assignment["c"]}
    assert plan.assignment["x"] in {
        plan.assignment["b"],
        plan.assignment["c"],
    }  # x is dead after step 0


def test_graph_outputs_are_never_reused() -> None:
    steps = [
        Step(("x",), ("early",)),
        Step(("early",), ("t",)),
        Step(("t",), ("u",)),
        Step(("u",), ("y",)),
    ]
    sizes = dict.fromkeys(["x", "early", "t", "u", "y"], 8)
    plan = plan_memory(steps, sizes, ["x"], ["early", "y"])
    _assert_valid(plan, steps, sizes, ["x"], ["early", "y"])
    others = {plan.assignment[n] for n in ("x", "t", "u", "y")}
    assert plan.assignment["early"] not in others


def test_an_alias_shares_its_source_buffer_and_keeps_it_alive() -> None:
    # flat is a's buffer (a Reshape with the same stored view); a is last read at step 1, but
    # flat is read at step 3, so nothing written at steps 2 and 3 may take that buffer.
    steps = [
        Step(("x",), ("a",)),
        Step(("a",), ("flat",)),
        Step(("x",), ("b",)),
        Step(("b", "flat"), ("y",)),
    ]
    sizes = dict.fromkeys(["x", "a", "flat", "b", "y"], 32)
    plan = plan_memory(steps, sizes, ["x"], ["y"], aliases={"flat": "a"})
    assert plan.assignment["flat"] == plan.assignment["a"]
    assert plan.assignment["a"] not in {plan.assignment["b"], plan.assignment["y"], plan.assignment["x"]}


def test_an_alias_that_is_a_graph_output_keeps_its_source_forever() -> None:
    steps = [Step(("x",), ("a",)), Step(("a",), ("view",)), Step(("x",), ("t",)), Step(("t",), ("y",))]
    sizes = dict.fromkeys(["x", "a", "view", "t", "y"], 8)
    plan = plan_memory(steps, sizes, ["x"], ["view", "y"], aliases={"view": "a"})
    assert plan.assignment["view"] == plan.assignment["a"]
    assert plan.assignment["a"] not in {plan.assignment[n] for n in ("x", "t", "y")}


def test_alias_chains_resolve_to_the_first_buffer() -> None:
    steps = [Step(("x",), ("a",)), Step(("a",), ("v1",)), Step(("v1",), ("v2",)), Step(("x", "v2"), ("y",))]
    sizes = dict.fromkeys(["x", "a", "v1", "v2", "y"], 8)
    plan = plan_memory(steps, sizes, ["x"], ["y"], aliases={"v1": "a", "v2": "v1"})
    assert plan.assignment["v2"] == plan.assignment["v1"] == plan.assignment["a"]
    assert plan.assignment["y"] != plan.assignment["a"]  # v2 is read while y is written


def test_smallest_fitting_buffer_is_chosen_and_buffers_grow() -> None:
    steps = [
        Step(("x",), ("big",)),
        Step(("big",), ("small",)),
        Step(("small",), ("huge",)),
        Step(("huge",), ("y",)),
    ]
    sizes = {"x": 10, "big": 100, "small": 5, "huge": 1000, "y": 1}
    plan = plan_memory(steps, sizes, ["x"], ["y"])
    _assert_valid(plan, steps, sizes, ["x"], ["y"])
    assert plan.assignment["small"] == plan.assignment["x"]  # 10 fits 5 better than nothing else free
    assert max(plan.buffer_sizes) == 1000
    assert len(plan.buffer_sizes) == 2


def test_scratch_lives_only_during_its_step() -> None:
    steps = [Step(("x",), ("a",), ("s0",)), Step(("a",), ("y",), ("s1",))]
    sizes = {"x": 4, "a": 4, "s0": 4, "s1": 4, "y": 4}
    plan = plan_memory(steps, sizes, ["x"], ["y"])
    _assert_valid(plan, steps, sizes, ["x"], ["y"])
    assert plan.assignment["s1"] in {plan.assignment["s0"], plan.assignment["x"]}


@st.composite
def _graphs(draw: st.DrawFn) -> tuple[list[Step], dict[str, int], list[str], list[str]]:
    inputs = [f"in{i}" for i in range(draw(st.integers(1, 3)))]
    available = list(inputs)
    steps = []
    for i in range(draw(st.integers(1, 12))):
        reads = tuple(draw(st.lists(st.sampled_from(available), min_size=1, max_size=3)))
        writes = tuple(f"t{i}_{k}" for k in range(draw(st.integers(1, 2))))
        scratch = (f"s{i}",) if draw(st.booleans()) else ()
        steps.append(Step(reads, writes, scratch))
        available.extend(writes)
    names = available + [s for step in steps for s in step.scratch]
    sizes = {name: draw(st.integers(1, 1000)) for name in names}
    outputs = draw(st.lists(st.sampled_from(available), min_size=1, max_size=3, unique=True))
    return steps, sizes, inputs, outputs


# No example database: it would write into the cwd (read-only under Bazel).
@settings(max_examples=300, deadline=None, database=None)
@given(_graphs())
def test_live_tensors_never_share_a_buffer(
    graph: tuple[list[Step], dict[str, int], list[str], list[str]],
) -> None:
    steps, sizes, inputs, outputs = graph
    _assert_valid(plan_memory(steps, sizes, inputs, outputs), steps, sizes, inputs, outputs)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
