"""mace_cl_converter.input_shapes: every open dimension is reported; user shapes fix them and are checked."""

from __future__ import annotations

import pytest
from converter_testing import make
from mace_cl_converter import InputShapeError, convert_model
from mace_cl_converter.input_shapes import parse_input_shape
from onnx import helper


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


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
