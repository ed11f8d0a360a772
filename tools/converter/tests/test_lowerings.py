"""mace_cl_converter.lowerings: older opsets' forms become the newest one's, and BatchNormalization's
parameters are checked before it becomes per-channel Mul + Add."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from converter_testing import conv_bn_relu_model, f32, initializer, make, ort, run
from mace_cl_converter import ConversionError, convert_model
from onnx import helper, numpy_helper


def test_softmax_opset11_coerces_to_2d() -> None:
    model = make([helper.make_node("Softmax", ["x"], ["y"], axis=1)], {"x": [2, 3, 4, 5]}, ["y"], opset=11)
    x = f32(2, 3, 4, 5)
    _, (ours,) = run(model, {"x": x})
    flat = x.reshape(2, -1)
    expected = np.exp(flat - flat.max(1, keepdims=True)) / np.exp(flat - flat.max(1, keepdims=True)).sum(
        1, keepdims=True
    )
    np.testing.assert_allclose(ours, expected.reshape(x.shape), rtol=1e-5, atol=1e-6)


def test_attribute_forms_of_old_opsets() -> None:
    nodes = [
        helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0]),
        helper.make_node("Squeeze", ["u"], ["s"], axes=[0]),
        helper.make_node("Clip", ["s"], ["c"], min=-0.5, max=0.5),
        helper.make_node("Pad", ["c"], ["y"], pads=[0, 1, 0, 2], value=1.5),
    ]
    model = make(nodes, {"x": [3, 4]}, ["y"], opset=10)
    x = f32(3, 4)
    _, (ours,) = run(model, {"x": x})
    np.testing.assert_allclose(
        ours, np.pad(np.clip(x, -0.5, 0.5), ((0, 0), (1, 2)), constant_values=1.5), rtol=1e-6
    )


# ---- malformed parameters (found by fuzzing; onnx.checker lets them through) ----------


@pytest.mark.parametrize("param", ["s", "b", "m", "v"])
def test_batchnorm_parameter_not_per_channel_names_node_and_input(param: str) -> None:
    # Was a numpy broadcast/reshape ValueError from the BatchNormalization lowering.
    model = conv_bn_relu_model()
    tensor = initializer(model, param)
    tensor.CopyFrom(numpy_helper.from_array(f32(4), param))  # 4 values, 6 channels
    with pytest.raises(
        ConversionError, match=f"BatchNormalization.*input '{param}' has 4 values, .* 6 channels"
    ):
        convert_model(model)


def test_batchnorm_single_value_parameters_apply_to_every_channel() -> None:
    # Stricter than needed by the converter, onnxruntime wants [C]; one value per
    # parameter is accepted here (as before) and means the same value for each channel.
    model, repeated = conv_bn_relu_model(), onnx.ModelProto()
    repeated.CopyFrom(model)
    for name in ("m", "s"):
        first = numpy_helper.to_array(initializer(model, name))[:1]
        initializer(model, name).CopyFrom(numpy_helper.from_array(first, name))
        initializer(repeated, name).CopyFrom(numpy_helper.from_array(np.repeat(first, 6), name))
    x = f32(1, 3, 7, 9)
    (want,) = ort(repeated, {"x": x})
    _, (got,) = run(model, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_batchnorm_negative_variance_names_node() -> None:
    model = conv_bn_relu_model()
    initializer(model, "v").CopyFrom(numpy_helper.from_array(-np.ones(6, np.float32), "v"))
    with pytest.raises(ConversionError, match=r"BatchNormalization.*var \+ epsilon is not positive"):
        convert_model(model)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
