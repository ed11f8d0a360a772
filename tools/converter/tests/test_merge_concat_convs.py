"""passes/merge_concat_convs.py: a channel Concat of sibling Convs becomes one Conv, only where exact."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make, ort, run
from onnx import helper


def fire(
    expand3x3: dict | None = None, relu: bool = True, expand1x1: dict | None = None
) -> tuple[list, dict]:
    """SqueezeNet's fire module after its squeeze: 1x1 and 3x3 expands, Relus, Concat."""
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["e1"], **(expand1x1 or {})),
        helper.make_node("Conv", ["x", "W3", "B3"], ["e3"], **(expand3x3 or {"pads": [1, 1, 1, 1]})),
    ]
    if relu:
        nodes += [helper.make_node("Relu", ["e1"], ["r1"]), helper.make_node("Relu", ["e3"], ["r3"])]
    nodes.append(helper.make_node("Concat", ["r1", "r3"] if relu else ["e1", "e3"], ["y"], axis=1))
    inits = {"W1": f32(20, 6, 1, 1), "B1": f32(20), "W3": f32(36, 6, 3, 3), "B3": f32(36)}
    return nodes, inits


def test_fire_expands_merge_into_one_conv() -> None:
    nodes, inits = fire()
    model = make(nodes, {"x": [2, 6, 7, 9]}, ["y"], inits)
    x = f32(2, 6, 7, 9)
    graph, (ours,) = run(model, {"x": x})
    ((conv,),) = [[n for n in graph.nodes]]
    assert (conv.op_type, conv.attrs.get("activation"), conv.attrs["kernel_shape"]) == (
        "Conv",
        "relu",
        [3, 3],
    )
    weights = graph.constants[conv.inputs[1]]
    assert weights.shape == (56, 6, 3, 3)
    # the 1x1's weights sit at the centre tap, zeros around them
    np.testing.assert_array_equal(weights[:20, :, 1, 1], inits["W1"][:, :, 0, 0])
    assert not np.any(np.delete(weights[:20].reshape(20, 6, 9), 4, axis=2))
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "variant", ["stride2", "dilated", "different_activation", "different_inputs", "even_filter"]
)
def test_not_merged_when_inexact(variant: str) -> None:
    expand3x3: dict = {"pads": [1, 1, 1, 1]}
    expand1x1: dict = {}
    relu = True
    inputs = {"x": [1, 6, 8, 8]}
    if variant == "stride2":
        expand3x3 = {"pads": [1, 1, 1, 1], "strides": [2, 2]}
        expand1x1 = {"strides": [2, 2]}
    elif variant == "dilated":
        expand3x3 = {"pads": [2, 2, 2, 2], "dilations": [2, 2]}
    elif variant == "different_activation":
        relu = False
    nodes, inits = fire(expand3x3, relu, expand1x1)
    if variant == "different_activation":
        nodes.insert(2, helper.make_node("Relu", ["e1"], ["r1"]))
        nodes[-1] = helper.make_node("Concat", ["r1", "e3"], ["y"], axis=1)
    elif variant == "different_inputs":
        inputs["z"] = [1, 6, 8, 8]
        nodes[1] = helper.make_node("Conv", ["z", "W3", "B3"], ["e3"], pads=[1, 1, 1, 1])
    elif variant == "even_filter":
        inits["W3"] = f32(36, 6, 2, 2)
        nodes[1] = helper.make_node("Conv", ["x", "W3", "B3"], ["e3"], pads=[1, 1, 0, 0])
    model = make(nodes, inputs, ["y"], inits)
    feeds = {name: f32(*shape) for name, shape in inputs.items()}
    graph, (ours,) = run(model, feeds)
    assert "Concat" in [n.op_type for n in graph.nodes]
    np.testing.assert_allclose(ours, ort(model, feeds)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "bounds", [((0.0, 6.0), (0.0, 6.0)), ((0.0, 0.1), (-0.1, 0.2))], ids=["relu6", "unequal"]
)
def test_clip_bounds_are_kept_or_block_the_merge(bounds: tuple) -> None:
    # A fused clip keeps its bounds in activation_min / activation_max: equal bounds merge
    # (and stay on the merged Conv), unequal ones keep the Convs apart.
    (lo1, hi1), (lo3, hi3) = bounds
    nodes, inits = fire(relu=False)
    nodes[-1:] = [
        helper.make_node("Clip", ["e1", "lo1", "hi1"], ["r1"]),
        helper.make_node("Clip", ["e3", "lo3", "hi3"], ["r3"]),
        helper.make_node("Concat", ["r1", "r3"], ["y"], axis=1),
    ]
    for name, value in (("lo1", lo1), ("hi1", hi1), ("lo3", lo3), ("hi3", hi3)):
        inits[name] = np.array(value, np.float32)
    model = make(nodes, {"x": [1, 6, 7, 9]}, ["y"], inits)
    x = 4 * f32(1, 6, 7, 9)
    graph, (ours,) = run(model, {"x": x})
    convs = [n for n in graph.nodes if n.op_type == "Conv"]
    assert len(convs) == (1 if bounds[0] == bounds[1] else 2)
    kept = {("clip", float(np.float32(lo)), float(np.float32(hi))) for lo, hi in bounds}  # stored as float32
    assert all(
        (c.attrs.get("activation"), c.attrs.get("activation_min"), c.attrs.get("activation_max")) in kept
        for c in convs
    )
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-4, atol=1e-4)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
