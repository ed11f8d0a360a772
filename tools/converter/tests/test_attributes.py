"""mace_cl_converter.attributes: corrupt node attributes (found by fuzzing; onnx.checker lets them
through) are ConversionErrors that name the node and the attribute."""

from __future__ import annotations

import pytest
from converter_testing import f32, make
from mace_cl_converter import ConversionError, convert_model
from onnx import helper, numpy_helper


def test_constant_node_with_corrupt_tensor_names_node_and_attribute() -> None:
    model = make(
        [
            helper.make_node("Constant", [], ["k"], name="const", value=numpy_helper.from_array(f32(4), "k")),
            helper.make_node("Add", ["x", "k"], ["y"]),
        ],
        {"x": [4]},
        ["y"],
    )
    model.graph.node[0].attribute[0].t.raw_data = b"\0" * 5
    with pytest.raises(ConversionError, match="node 'const': attribute 'value' has 5 bytes of data"):
        convert_model(model)


def test_constant_node_with_nan_names_node() -> None:
    model = make(
        [
            helper.make_node("Constant", [], ["k"], name="const", value_floats=[1.0, float("nan")]),
            helper.make_node("Add", ["x", "k"], ["y"]),
        ],
        {"x": [2]},
        ["y"],
    )
    with pytest.raises(
        ConversionError, match=r"node 'const' .*attribute 'value_floats' holds NaN or infinite"
    ):
        convert_model(model)


def test_non_utf8_string_attribute_is_a_conversion_error() -> None:
    model = make(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2])],
        {"x": [1, 1, 4, 4]},
        ["y"],
    )
    model.graph.node[0].attribute.append(helper.make_attribute("auto_pad", b"\xff\xfe"))
    with pytest.raises(ConversionError, match="node 'pool': attribute 'auto_pad' is not valid UTF-8"):
        convert_model(model)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
