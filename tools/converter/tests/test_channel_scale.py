"""passes/channel_scale.py: Conv(Mul(x, s)), s of shape [N, C, 1, 1], becomes one Conv with s
as input 4, only where exact; the runtime applies it in either plan kind."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make, ort, run
from mace_cl import MaceRuntime
from mace_cl.planning.planner import plan_graph
from onnx import helper


def _se_block(mul_inputs: list[str], residual: bool = False) -> list:
    """x -> GlobalAveragePool -> Conv -> Relu -> Conv -> Sigmoid = s; Conv(x * s) (+ x)."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Conv", ["g", "Wr", "Br"], ["r"]),
        helper.make_node("Relu", ["r"], ["rr"]),
        helper.make_node("Conv", ["rr", "We", "Be"], ["e"]),
        helper.make_node("Sigmoid", ["e"], ["s"]),
        helper.make_node("Mul", mul_inputs, ["xs"]),
        helper.make_node("Conv", ["xs", "Wp", "Bp"], ["p" if residual else "y"]),
    ]
    if residual:
        nodes.append(helper.make_node("Add", ["p", "x"], ["y"]))
    return nodes


def _weights(channels: int, out_channels: int) -> dict:
    return {
        "Wr": f32(4, channels, 1, 1),
        "Br": f32(4),
        "We": f32(channels, 4, 1, 1),
        "Be": f32(channels),
        "Wp": f32(out_channels, channels, 1, 1),
        "Bp": f32(out_channels),
    }


@pytest.mark.parametrize(("mul_inputs", "residual"), [(["x", "s"], False), (["s", "x"], True)])
def test_squeeze_excite_scale_folds_into_projection(mul_inputs: list[str], residual: bool) -> None:
    # 40 channels: 10 input blocks, enough for the GPU plan's tiled kernel (-DINPUT_SCALE);
    # the CPU plan multiplies into a scratch buffer first. Batch 2: a scale per image.
    out_channels = 40 if residual else 24
    model = make(_se_block(mul_inputs, residual), {"x": [2, 40, 5, 6]}, ["y"], _weights(40, out_channels))
    x = f32(2, 40, 5, 6)
    graph, (ours,) = run(model, {"x": x})
    assert "Mul" not in [n.op_type for n in graph.nodes]
    (projection,) = [n for n in graph.nodes if n.op_type == "Conv" and len(n.inputs) == 5]
    assert projection.inputs[0] == "x" and projection.inputs[4] == "s"
    assert projection.inputs[3] == ("x" if residual else "")
    expected = ort(model, {"x": x})[0]
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)

    index = graph.nodes.index(projection)
    cpu_plan = plan_graph(graph, device_kind="cpu").node_plans[index]
    assert "-DELTWISE_OP=OP_MUL" in cpu_plan.launches[0].program.options  # into scratch first
    gpu_plan = plan_graph(graph, device_kind="gpu").node_plans[index]
    assert any("-DINPUT_SCALE" in launch.program.options for launch in gpu_plan.launches)
    gpu_result = MaceRuntime(graph, plan_kind="gpu").run_dict({"x": x})["y"]
    np.testing.assert_allclose(gpu_result, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "variant", ["product_read_twice", "product_is_output", "per_pixel_scale", "constant_scale"]
)
def test_scale_not_folded_when_inexact(variant: str) -> None:
    nodes = _se_block(["x", "s"])
    outputs = ["y"]
    inits = _weights(8, 8)
    if variant == "product_read_twice":
        nodes.append(helper.make_node("Relu", ["xs"], ["z"]))
        outputs.append("z")
    elif variant == "product_is_output":
        outputs.append("xs")
    elif variant == "per_pixel_scale":  # a [N, 1, H, W] gate: not per channel
        nodes[5] = helper.make_node("Mul", ["x", "m"], ["xs"])
        nodes.insert(5, helper.make_node("ReduceMean", ["x"], ["m"], axes=[1], keepdims=1))
    else:
        nodes[5] = helper.make_node("Mul", ["x", "k"], ["xs"])
        inits["k"] = f32(1, 8, 1, 1)
    model = make(nodes, {"x": [1, 8, 3, 3]}, outputs, inits)
    x = f32(1, 8, 3, 3)
    graph, ours = run(model, {"x": x})
    assert all(len(n.inputs) <= 4 for n in graph.nodes if n.op_type == "Conv")
    for got, want in zip(ours, ort(model, {"x": x}), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
