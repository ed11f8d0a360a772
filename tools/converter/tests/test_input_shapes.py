"""mace_cl_converter.input_shapes: every open dimension is reported; user shapes fix them and are
checked; shape strings mean what mace_model's early check (rules/private/input_shapes.bzl) says."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from converter_testing import make
from mace_cl import MaceRuntime
from mace_cl_converter import InputShapeError, convert_model
from mace_cl_converter.input_shapes import parse_input_shape, parse_input_shapes
from onnx import helper

# Not resolved: under Bazel the runfiles tree (where the test's data is) is the repository.
SHARED_CASES = Path(__file__).absolute().parents[3] / "rules" / "tests" / "input_shape_cases.bzl"


def shared_cases() -> list[tuple[str, list[int] | None]]:
    """INPUT_SHAPE_CASES of rules/tests/input_shape_cases.bzl: Starlark literals, read as Python's."""
    tree = ast.parse(SHARED_CASES.read_text(encoding="utf-8"), str(SHARED_CASES))
    for node in tree.body:
        names = [getattr(target, "id", None) for target in getattr(node, "targets", [])]
        if isinstance(node, ast.Assign) and names == ["INPUT_SHAPE_CASES"]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{SHARED_CASES} defines no INPUT_SHAPE_CASES")


def test_every_dynamic_dim_is_listed() -> None:
    model = make(
        [helper.make_node("Add", ["a", "b"], ["y"])], {"a": ["N", 3, "H", 4], "b": ["N", 3, "H", 4]}, ["y"]
    )
    with pytest.raises(InputShapeError) as info:
        convert_model(model)
    text = str(info.value)
    assert "'a': dim 0 (N), dim 2 (H)" in text and "'b': dim 0 (N), dim 2 (H)" in text


def test_user_shapes_fix_dynamic_dims_and_are_checked() -> None:
    model = make([helper.make_node("Relu", ["a"], ["y"])], {"a": ["N", 3]}, ["y"])
    assert convert_model(model, {"a": (2, 3)}).outputs[0].shape == (2, 3)
    with pytest.raises(InputShapeError, match="fixes it to 3"):
        convert_model(model, {"a": (2, 4)})
    with pytest.raises(InputShapeError, match="not a graph input"):
        convert_model(model, {"a": (2, 3), "zz": (1,)})
    assert parse_input_shape("in:0=1,3,224,224") == ("in:0", (1, 3, 224, 224))


@pytest.mark.parametrize(("text", "dims"), shared_cases())
def test_shape_strings_mean_what_the_starlark_check_says(text: str, dims: list[int] | None) -> None:
    # mace_model checks input_shapes at analysis time with the same table
    # (//rules/tests:input_shapes_tests); what it lets through, the converter must accept alike.
    if dims is None:
        with pytest.raises(InputShapeError, match=r"^--input-shape 'x=.*'"):
            parse_input_shape(f"x={text}")
    else:
        assert parse_input_shape(f"x={text}") == ("x", tuple(dims))


def test_empty_shape_is_a_scalar_input() -> None:
    # mace_model(input_shapes = {"x": ""}) passes --input-shape x=: a scalar, shape [], which
    # agrees with a model that declares x a scalar, and not with any other rank.
    assert parse_input_shape("x=") == ("x", ())
    model = make([helper.make_node("Mul", ["x", "k"], ["y"])], {"x": []}, ["y"], {"k": np.float32(3.0)})
    converted = convert_model(model, parse_input_shapes(["x="]))
    assert converted.inputs[0].shape == () and converted.outputs[0].shape == ()
    (y,) = MaceRuntime(converted).run(None, {"x": np.array(2.5, np.float32)})
    assert y.shape == () and y == np.float32(7.5)
    with pytest.raises(InputShapeError, match="gives rank 0, the model declares rank 2"):
        convert_model(make([helper.make_node("Relu", ["a"], ["b"])], {"a": ["N", 3]}, ["b"]), {"a": ()})


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
