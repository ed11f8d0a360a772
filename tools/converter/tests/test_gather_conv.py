"""passes/gather_conv.py: a ChannelGather that only a 1x1 Conv reads joins it as one
GatherConv, checked against onnxruntime on CPU and GPU plans."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, ort, shufflenet_v2_units
from mace_cl.execution import engine
from mace_cl.execution.engine import MaceRuntime
from mace_cl.planning.ops import gather_conv as gather_conv_ops
from mace_cl.planning.planner import plan_graph
from mace_cl.testing import device_under_test, half_rounded
from mace_cl_converter import convert_model
from onnx import helper, numpy_helper


def _sources(node) -> int:
    return len(node.inputs) - 2


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize(
    ("units", "channels"),
    [
        (3, 16),  # halves of 8 channels: whole blocks
        (3, 12),  # halves of 6: every source ends mid-block
        # Halves of 128 channels: each unit's gather reads one more branch output (the first
        # also the graph input), up to the eight a gather takes.
        (10, 256),
    ],
)
def test_shufflenet_branches_read_their_channels_where_they_are(
    units: int, channels: int, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The graph input is a source of the first gathers, twice a branch output's channels:
    # the GPU plans here read the sources whatever that costs.
    monkeypatch.setattr(gather_conv_ops, "GATHER_CONV_MAX_READ", 16)
    model = shufflenet_v2_units(units, channels, "Split")
    x = f32(1, channels, 5, 4)
    graph = convert_model(model, {"x": x.shape})
    fused = [node for node in graph.nodes if node.op_type == "GatherConv"]
    # Every branch but the first (which reads the split) starts with one.
    assert len(fused) == units - 1 and max(_sources(node) for node in fused) == min(units, 8)
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind=kind)
    plans = [plan for node, plan in zip(graph.nodes, runtime.plan.node_plans, strict=True) if node in fused]
    for plan in plans:
        kernels = [launch.kernel for launch in plan.launches]
        # GPU plans: one launch reading the sources; CPU plans: the gather, then the Conv.
        assert kernels == (["conv2d_gpu_tiled"] if kind == "gpu" else ["gather_channels", "conv1x1_o32"])
    if kind == "gpu":
        sources = {_sources(node) for node in fused}
        options = {option for plan in plans for option in plan.launches[0].program.options}
        assert {f"-DSOURCES={count}" for count in sources if count > 1} <= options
    np.testing.assert_allclose(
        runtime.run_dict({"x": x})[model.graph.output[0].name], ort(model, {"x": x})[0], rtol=1e-4, atol=1e-5
    )


def test_tf32_tensor_cores_read_the_sources_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # The runtime plans as for a GPU with tensor cores (off NVIDIA the kernel emulates the mma
    # instruction through __local memory): -DSOURCES feeds the same loads. TF32 products:
    # each operand keeps 11 significant bits, about 2^-10 of the sum of |x * w| per layer.
    monkeypatch.setattr(engine, "has_tf32_mma", lambda device: True)
    model = shufflenet_v2_units(4, 64, "Split")
    x = f32(1, 64, 5, 4)
    graph = convert_model(model, {"x": x.shape}, data_type="fp32_tf32")
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind="gpu")
    fused = [
        plan.launches[0]
        for node, plan in zip(graph.nodes, runtime.plan.node_plans, strict=True)
        if node.op_type == "GatherConv"
    ]
    assert fused and all(
        "-DMMA_TF32" in launch.program.options
        and any(option.startswith("-DSOURCES=") for option in launch.program.options)
        for launch in fused
    )
    ours = runtime.run_dict({"x": x})[model.graph.output[0].name]
    expected = ort(model, {"x": x})[0]
    # Measured on PoCL: 7e-4 at most, outputs up to 3.4 in magnitude; a channel read from the
    # wrong source is off by O(1).
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=5e-3)


def test_more_source_channels_than_the_limit_run_the_gather(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gather_conv_ops, "GATHER_CONV_MAX_READ", 1)
    model = shufflenet_v2_units(3, 16, "Split")
    graph = convert_model(model, {"x": (1, 16, 5, 4)})
    kernels = [
        launch.kernel for plan in plan_graph(graph, device_kind="gpu").node_plans for launch in plan.launches
    ]
    assert "gather_channels" in kernels


def test_half_storage() -> None:
    model = shufflenet_v2_units(3, 12, "Split")
    for init in model.graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(half_rounded(value), init.name))
    x = half_rounded(f32(1, 12, 5, 4))
    graph = convert_model(model, {"x": x.shape}, data_type="fp16_fp32")
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind="gpu")
    ours = runtime.run_dict({"x": x})[model.graph.output[0].name]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-2, atol=1e-2)


def test_a_gather_read_by_a_padded_conv_is_left_alone() -> None:
    model = shufflenet_v2_units(3, 16, "Split")
    first_convs = [
        node for node in model.graph.node if node.op_type == "Conv" and node.input[1].startswith("w1_")
    ]
    for node in first_convs[1:]:
        weights = next(init for init in model.graph.initializer if init.name == node.input[1])
        weights.CopyFrom(numpy_helper.from_array(f32(8, 8, 3, 3) / np.float32(8), weights.name))
        node.attribute.extend([helper.make_attribute("pads", [1, 1, 1, 1])])
    graph = convert_model(model, {"x": (1, 16, 5, 4)})
    ops = [node.op_type for node in graph.nodes]
    assert "GatherConv" not in ops and "ChannelGather" in ops


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
