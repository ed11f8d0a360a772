"""passes/fuse_residual.py: Add(Conv(...), other) becomes one Conv reading other, only where exact."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make, ort, run
from onnx import helper


def test_residual_add_fuses_into_projection_conv() -> None:
    # An inverted-residual block: the Add joins the projection and the block's input.
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["e"]),
        helper.make_node("Clip", ["e", "lo", "hi"], ["r"]),
        helper.make_node("Conv", ["r", "W2"], ["p"]),
        helper.make_node("Add", ["x", "p"], ["y"]),
    ]
    inits = {
        "W1": f32(24, 8, 1, 1),
        "B1": f32(24),
        "W2": f32(8, 24, 1, 1),
        "lo": np.array(0, np.float32),
        "hi": np.array(6, np.float32),
    }
    model = make(nodes, {"x": [1, 8, 7, 7]}, ["y"], inits)
    x = f32(1, 8, 7, 7)
    graph, (ours,) = run(model, {"x": x})
    assert [(n.op_type, n.attrs.get("activation")) for n in graph.nodes] == [("Conv", "clip"), ("Conv", None)]
    assert graph.nodes[1].inputs[2:] == ["", "x"] and graph.nodes[1].outputs == ["y"]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["Add", "Sum"])
def test_activation_after_residual_add_fuses_too(op: str) -> None:
    # ResNet: relu(conv(x) + x): the Add (a Sum in older exports) fuses first, then the Relu.
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node(op, ["c", "x"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    model = make(nodes, {"x": [2, 5, 6, 6]}, ["y"], {"W": f32(5, 5, 3, 3), "B": f32(5)})
    x = f32(2, 5, 6, 6)
    graph, (ours,) = run(model, {"x": x})
    assert [(n.op_type, n.attrs.get("activation"), len(n.inputs)) for n in graph.nodes] == [
        ("Conv", "relu", 4)
    ]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-4, atol=1e-4)


def test_residual_add_of_two_convs_keeps_topological_order() -> None:
    # The fused Conv reads the other branch's output, computed after it in the source
    # order: it must move to the Add's place.
    nodes = [
        helper.make_node("Conv", ["x", "Wa"], ["a"]),
        helper.make_node("Conv", ["x", "Wb"], ["b"]),
        helper.make_node("Relu", ["b"], ["rb"]),
        helper.make_node("Add", ["a", "rb"], ["y"]),
    ]
    model = make(nodes, {"x": [1, 4, 5, 5]}, ["y"], {"Wa": f32(12, 4, 1, 1), "Wb": f32(12, 4, 1, 1)})
    x = f32(1, 4, 5, 5)
    graph, (ours,) = run(model, {"x": x})
    assert [(n.op_type, n.outputs) for n in graph.nodes] == [("Conv", ["rb"]), ("Conv", ["y"])]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "variant",
    [
        "conv_read_twice",
        "conv_output_is_graph_output",
        "activation_before_add",
        "broadcast_other",
        "constant_other",
    ],
)
def test_residual_add_not_fused_when_inexact(variant: str) -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"])]
    outputs = ["y"]
    inputs = {"x": [1, 4, 3, 3]}
    inits = {"W": f32(4, 4, 1, 1), "k": f32(1, 4, 3, 3)}
    other = "x"
    source = "c"
    if variant == "conv_read_twice":
        nodes.append(helper.make_node("Sigmoid", ["c"], ["s"]))
        outputs.append("s")
    elif variant == "conv_output_is_graph_output":
        outputs.append("c")
    elif variant == "activation_before_add":
        nodes.append(helper.make_node("Relu", ["c"], ["rc"]))
        source = "rc"
    elif variant == "broadcast_other":
        inputs["v"] = [1, 4, 1, 1]
        other = "v"
    else:
        other = "k"
    nodes.append(helper.make_node("Add", [source, other], ["y"]))
    model = make(nodes, inputs, outputs, inits)
    feeds = {name: f32(*shape) for name, shape in inputs.items()}
    graph, ours = run(model, feeds)
    assert "Add" in [n.op_type for n in graph.nodes]
    assert all(len(n.inputs) <= 3 for n in graph.nodes if n.op_type == "Conv")
    for got, want in zip(ours, ort(model, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_sum_of_three_is_not_fused() -> None:
    # Input 3 holds one residual: a Sum of the Conv and two others stays a Sum.
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"]), helper.make_node("Sum", ["c", "x", "x"], ["y"])]
    model = make(nodes, {"x": [1, 4, 3, 3]}, ["y"], {"W": f32(4, 4, 1, 1)})
    x = f32(1, 4, 3, 3)
    graph, (ours,) = run(model, {"x": x})
    assert [n.op_type for n in graph.nodes] == ["Conv", "Sum"]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
