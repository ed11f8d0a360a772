"""mace_cl_converter.pipeline's final checks: what no pass could make runnable is a clear error."""

from __future__ import annotations

import pytest
from converter_testing import f32, make
from mace_cl_converter import ConversionError, UnsupportedOpError, convert_model
from onnx import helper


def test_unsupported_op_error_names_op_node_opset_and_list() -> None:
    model = make(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Erf", ["r"], ["y"], name="my_erf")],
        {"x": [1, 4]},
        ["y"],
    )
    with pytest.raises(UnsupportedOpError) as info:
        convert_model(model)
    text = str(info.value)
    for part in ("my_erf", "Erf", "opset 13", "supported ONNX ops:", "Conv"):
        assert part in text


def test_constant_output_is_a_clear_error() -> None:
    model = make(
        [helper.make_node("Add", ["k", "k"], ["y"]), helper.make_node("Relu", ["x"], ["z"])],
        {"x": [2]},
        ["y", "z"],
        {"k": f32(2)},
    )
    with pytest.raises(ConversionError, match="'y' is a constant"):
        convert_model(model)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
