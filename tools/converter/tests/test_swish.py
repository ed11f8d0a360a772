"""passes/swish.py: x * Sigmoid(x) becomes Swish and x * HardSigmoid(x) (1/6, 1/2) HardSwish,
which then fuse into the Conv before them."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make, ort, run
from onnx import helper


def test_swish_pattern_fuses_into_conv() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"]),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["y"]),
    ]
    model = make(nodes, {"x": [1, 3, 4, 4]}, ["y"], {"W": f32(5, 3, 1, 1)})
    x = f32(1, 3, 4, 4)
    graph, (ours,) = run(model, {"x": x})
    assert [(n.op_type, n.attrs.get("activation")) for n in graph.nodes] == [("Conv", "swish")]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_hard_swish_pattern_fuses_into_conv() -> None:
    # torch's Hardswish below opset 14: HardSigmoid(alpha=1/6 as float32, beta=0.5), then Mul.
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"]),
        helper.make_node("HardSigmoid", ["c"], ["s"], alpha=float(np.float32(1 / 6)), beta=0.5),
        helper.make_node("Mul", ["s", "c"], ["y"]),
    ]
    model = make(nodes, {"x": [1, 3, 4, 4]}, ["y"], {"W": f32(5, 3, 1, 1)})
    x = 4 * f32(1, 3, 4, 4)  # reaches both of HardSigmoid's clamps
    graph, (ours,) = run(model, {"x": x})
    assert [(n.op_type, n.attrs.get("activation")) for n in graph.nodes] == [("Conv", "hard_swish")]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("alpha", "beta"), [(0.2, 0.5), (1 / 6, 0.6)])
def test_hard_sigmoid_gate_with_other_parameters_stays_two_nodes(alpha: float, beta: float) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"]),
        helper.make_node("HardSigmoid", ["c"], ["s"], alpha=alpha, beta=beta),
        helper.make_node("Mul", ["c", "s"], ["y"]),
    ]
    model = make(nodes, {"x": [1, 3, 4, 4]}, ["y"], {"W": f32(5, 3, 1, 1)})
    x = 4 * f32(1, 3, 4, 4)
    graph, (ours,) = run(model, {"x": x})
    assert "HardSwish" not in [n.op_type for n in graph.nodes]
    assert [n.attrs.get("activation") for n in graph.nodes if n.op_type == "Conv"] != ["hard_swish"]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
