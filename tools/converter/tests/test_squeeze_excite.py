"""passes/squeeze_excite.py: GlobalAveragePool -> 1x1 Conv -> 1x1 Conv becomes one SqueezeExcite."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from converter_testing import f32, make, ort, run
from onnx import helper


def _gate(
    hidden_op: str, gate_op: str, biases: bool = True, shape=(1, 24, 9, 9), hidden: int = 6
) -> onnx.ModelProto:
    """x -> pool -> Conv -> hidden_op -> Conv -> gate_op -> Mul(x) -> y (MobileNetV3's and
    EfficientNet's block, HardSigmoid / Sigmoid gates)."""
    channels = shape[1]
    b = (["B1"], ["B2"]) if biases else ([], [])
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Conv", ["g", "W1", *b[0]], ["h"]),
        helper.make_node(hidden_op, ["h"], ["ha"]),
        helper.make_node("Conv", ["ha", "W2", *b[1]], ["e"]),
        helper.make_node(gate_op, ["e"], ["s"]),
        helper.make_node("Mul", ["x", "s"], ["y"]),
    ]
    inits = {
        "W1": f32(hidden, channels, 1, 1) / np.float32(np.sqrt(channels)),
        "W2": f32(channels, hidden, 1, 1) / np.float32(np.sqrt(hidden)),
    }
    if biases:
        inits.update({"B1": f32(hidden), "B2": f32(channels)})
    return make(nodes, {"x": list(shape)}, ["y"], inits)


@pytest.mark.parametrize(
    ("hidden_op", "gate_op", "biases", "shape"),
    [
        ("Relu", "HardSigmoid", True, (1, 24, 9, 9)),  # MobileNetV3
        ("Relu", "Sigmoid", False, (2, 10, 5, 5)),  # two images, channels mid-block, no biases
        ("Relu", "Sigmoid", True, (1, 16, 60, 60)),  # many pixels: partial pooling launch first
    ],
)
def test_squeeze_excite_becomes_one_node(hidden_op: str, gate_op: str, biases: bool, shape: tuple) -> None:
    model = _gate(hidden_op, gate_op, biases, shape)
    x = f32(*shape)
    graph, (ours,) = run(model, {"x": x})
    ops = [node.op_type for node in graph.nodes]
    assert ops == ["SqueezeExcite", "Mul"]
    gate = graph.nodes[0]
    assert gate.attrs["hidden_activation"] == "relu" and gate.attrs["activation"] == gate_op.lower().replace(
        "hardsigmoid", "hard_sigmoid"
    )
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_efficientnet_swish_gate() -> None:
    # EfficientNet: the hidden layer's activation is SiLU (x * sigmoid(x)), fused as swish.
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Conv", ["g", "W1", "B1"], ["h"]),
        helper.make_node("Sigmoid", ["h"], ["hs"]),
        helper.make_node("Mul", ["h", "hs"], ["ha"]),
        helper.make_node("Conv", ["ha", "W2", "B2"], ["e"]),
        helper.make_node("Sigmoid", ["e"], ["s"]),
        helper.make_node("Mul", ["x", "s"], ["y"]),
    ]
    inits = {"W1": f32(8, 32, 1, 1), "B1": f32(8), "W2": f32(32, 8, 1, 1), "B2": f32(32)}
    model = make(nodes, {"x": [1, 32, 7, 7]}, ["y"], inits)
    x = f32(1, 32, 7, 7)
    graph, (ours,) = run(model, {"x": x})
    assert [node.op_type for node in graph.nodes] == ["SqueezeExcite", "Mul"]
    assert graph.nodes[0].attrs["hidden_activation"] == "swish"
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_a_pooled_tensor_read_twice_is_left_alone() -> None:
    model = _gate("Relu", "Sigmoid")
    model.graph.node.append(helper.make_node("Relu", ["g"], ["g2"]))
    model.graph.output.append(helper.make_tensor_value_info("g2", onnx.TensorProto.FLOAT, None))
    x = f32(1, 24, 9, 9)
    graph, ours = run(model, {"x": x})
    assert "SqueezeExcite" not in [node.op_type for node in graph.nodes]
    for mine, theirs in zip(ours, ort(model, {"x": x}), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-5)


def test_a_padded_conv_is_left_alone() -> None:
    # Padding makes the squeeze Conv's output 3x3: no longer a per-channel gate.
    model = _gate("Relu", "Sigmoid")
    del model.graph.node[5]  # the Mul; the gate itself is the output
    model.graph.node[1].attribute.append(helper.make_attribute("pads", [1, 1, 1, 1]))
    model.graph.output[0].name = "s"
    model = onnx.shape_inference.infer_shapes(model)
    x = f32(1, 24, 9, 9)
    graph, (ours,) = run(model, {"x": x})
    assert [node.op_type for node in graph.nodes] == ["GlobalAveragePool", "Conv", "Conv"]
    assert ours.shape == (1, 24, 3, 3)
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
