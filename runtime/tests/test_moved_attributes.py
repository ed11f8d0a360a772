"""Attributes of older opsets that newer ones take as inputs: op_inputs.MOVED_TO_INPUTS.

``plan_node`` moves them into the inputs before a plan function runs (the converter does the
same when it imports a model), so the attribute form must plan exactly like the input form.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.model.graph import Node
from mace_cl.planning.ops.base import OpError, PlanContext, PlanInput
from mace_cl.planning.ops.op_inputs import MOVED_TO_INPUTS, with_moved_attributes
from mace_cl.planning.ops.registry import plan_node, supported_op_types

X = PlanInput("x", (2, 6, 4, 5))
X3 = PlanInput("x", (2, 6, 5))  # for Unsqueeze: the runtime's tensors have rank 4 at most
OMITTED = PlanInput("", None)


def _constant(name: str, value: np.ndarray) -> PlanInput:
    return PlanInput(name, tuple(value.shape), value)


def _ints(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


# op type, attribute form, the same as inputs (after X), other attributes
CASES = [
    ("Clip", {"min": -1.0, "max": 2.5}, [np.float32(-1.0), np.float32(2.5)], {}),
    ("Clip", {"max": 2.5}, [None, np.float32(2.5)], {}),
    (
        "Pad",
        {"pads": [0, 1, 0, 2, 0, 0, 1, 0], "value": 1.5},
        [_ints(0, 1, 0, 2, 0, 0, 1, 0), np.float32(1.5)],
        {},
    ),
    (
        "Slice",
        {"starts": [1, 0], "ends": [5, 3], "axes": [1, 3]},
        [_ints(1, 0), _ints(5, 3), _ints(1, 3)],
        {},
    ),
    ("Split", {"split": [2, 4]}, [_ints(2, 4)], {"axis": 1}),
    ("Unsqueeze", {"axes": [2]}, [_ints(2)], {}),
    ("ReduceMean", {"axes": [2, 3]}, [_ints(2, 3)], {"keepdims": 0}),
    ("Reshape", {"shape": [2, -1]}, [_ints(2, -1)], {}),
    (
        "Upsample",
        {"scales": [1.0, 1.0, 2.0, 1.5]},
        [np.array([1, 1, 2, 1.5], np.float32)],
        {"mode": "nearest"},
    ),
]


@pytest.mark.parametrize(("op_type", "attrs", "values", "others"), CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("device_kind", ["cpu", "gpu"])
def test_attribute_form_plans_like_input_form(
    op_type: str, attrs: dict, values: list, others: dict, device_kind: str
) -> None:
    outputs = ["a", "b"] if op_type == "Split" else ["y"]
    x = X3 if op_type == "Unsqueeze" else X
    old = Node(op_type, "n", ["x"], outputs, {**attrs, **others})
    new_inputs = [x] + [
        OMITTED if v is None else _constant(f"p{i}", np.asarray(v)) for i, v in enumerate(values)
    ]
    new = Node(op_type, "n", [item.name for item in new_inputs], outputs, others)
    context = PlanContext(device_kind)
    got, want = plan_node(old, [x], context), plan_node(new, new_inputs, context)
    assert (got.output_shapes, got.launches, got.scratch_bytes) == (
        want.output_shapes,
        want.launches,
        want.scratch_bytes,
    )
    assert got.constants.keys() == want.constants.keys()
    for key, value in got.constants.items():
        np.testing.assert_array_equal(value, want.constants[key])


def test_moved_attributes_become_constant_inputs() -> None:
    node = Node("Pad", "pad", ["x"], ["y"], {"pads": [0, 1, 0, 1], "value": 2.0, "mode": "edge"})
    moved, inputs = with_moved_attributes(node, [X])
    assert moved.attrs == {"mode": "edge"}
    assert [item.name for item in inputs] == ["x", "pad_pads", "pad_value"]
    assert inputs[1].value is not None and inputs[1].value.tolist() == [0, 1, 0, 1]
    assert inputs[2].value is not None and float(inputs[2].value) == 2.0
    unchanged = Node("Pad", "pad", ["x", "p"], ["y"], {"mode": "edge"})
    assert with_moved_attributes(unchanged, [X]) == (unchanged, [X])


def test_a_parameter_given_both_ways_is_refused() -> None:
    node = Node("Squeeze", "sq", ["x", "axes"], ["y"], {"axes": [0]})
    with pytest.raises(OpError, match=r"axes is given both as attribute 'axes' and as input 1"):
        with_moved_attributes(node, [X, _constant("axes", _ints(0))])


def test_malformed_attributes_are_refused() -> None:
    with pytest.raises(OpError, match=r"attribute 'axes' must be a list of ints"):
        with_moved_attributes(Node("Squeeze", "sq", ["x"], ["y"], {"axes": [0.5]}), [X])
    with pytest.raises(OpError, match=r"attribute 'min' must be a number"):
        with_moved_attributes(Node("Clip", "c", ["x"], ["y"], {"min": [0.0, 1.0]}), [X])


def test_the_table_names_runtime_ops_and_converter_only_ops() -> None:
    # Every op type of the table is planned by the runtime, except the reductions the
    # converter only folds (no kernel): their axes still move, for onnx.reference.
    assert set(MOVED_TO_INPUTS) - set(supported_op_types()) == {"ReduceLogSum", "ReduceLogSumExp"}


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
