"""passes/shuffle_depthwise.py: a channel shuffle that only a depthwise Conv reads joins it as
one ShuffledDepthwiseConv, checked against onnxruntime on CPU and GPU plans."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from converter_testing import f32, make, ort
from mace_cl.execution.engine import MaceRuntime
from mace_cl.testing import device_under_test, half_rounded
from mace_cl_converter import convert_model
from onnx import helper, numpy_helper


def shufflenet_v1_unit(
    channels: int, groups: int, height: int = 6, width: int = 5, stride: int = 1, pointwise_group: int = 0
) -> onnx.ModelProto:
    """ShuffleNet v1's unit: grouped 1x1 + BN + ReLU, channel shuffle (Reshape to
    [N, g, C / g, H, W], Transpose of the two channel axes, Reshape back), 3x3 depthwise + BN,
    grouped 1x1 (group ``pointwise_group``, default ``groups``), then the residual Add and
    ReLU (stride 1) or nothing (stride 2)."""
    pointwise_group = pointwise_group or groups
    per = channels // groups
    inits = {
        "w1": f32(channels, per, 1, 1) / np.float32(np.sqrt(per)),
        "scale": np.linspace(0.5, 1.5, channels, dtype=np.float32),
        "shift": f32(channels),
        "mean": f32(channels),
        "var": np.linspace(0.5, 2.0, channels, dtype=np.float32),
        "s5": np.array([1, groups, per, height, width], np.int64),
        "s4": np.array([1, channels, height, width], np.int64),
        "wd": f32(channels, 1, 3, 3) / np.float32(3),
        "w2": f32(channels, channels // pointwise_group, 1, 1)
        / np.float32(np.sqrt(channels // pointwise_group)),
        "b2": f32(channels),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], group=groups),
        helper.make_node("BatchNormalization", ["a", "scale", "shift", "mean", "var"], ["b"]),
        helper.make_node("Relu", ["b"], ["c"]),
        helper.make_node("Reshape", ["c", "s5"], ["m"]),
        helper.make_node("Transpose", ["m"], ["t"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "s4"], ["shuffled"]),
        helper.make_node(
            "Conv", ["shuffled", "wd"], ["d"], group=channels, pads=[1, 1, 1, 1], strides=[stride, stride]
        ),
        helper.make_node("BatchNormalization", ["d", "scale", "shift", "mean", "var"], ["e"]),
        helper.make_node("Conv", ["e", "w2", "b2"], ["f"], group=pointwise_group),
    ]
    if stride == 1:
        nodes += [helper.make_node("Add", ["f", "x"], ["g"]), helper.make_node("Relu", ["g"], ["y"])]
    else:
        nodes.append(helper.make_node("Identity", ["f"], ["y"]))
    return make(nodes, {"x": [1, channels, height, width]}, ["y"], inits)


def _fused(graph) -> list:
    return [node for node in graph.nodes if node.op_type == "ShuffledDepthwiseConv"]


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize(
    ("channels", "groups", "stride", "cpu_launches"),
    [
        (136, 4, 1, ["depthwise_o16"]),  # ShuffleNet v1's 28x28 stage: runs of 34 channels
        (64, 4, 2, ["depthwise_o16"]),
        (40, 2, 1, ["depthwise_o16"]),
        (24, 3, 1, ["permute_channels", "depthwise_o16"]),  # g = 3: not a kernel value
        (48, 4, 1, ["permute_channels", "depthwise_o16"]),  # runs of 12: fewer than 16
    ],
)
def test_shuffle_joins_the_depthwise_conv(
    channels: int, groups: int, stride: int, cpu_launches: list[str], kind: str
) -> None:
    model = shufflenet_v1_unit(channels, groups, stride=stride)
    x = f32(1, channels, 6, 5)
    graph = convert_model(model, {"x": x.shape})
    (fused,) = _fused(graph)
    assert fused.attrs["shuffle_groups"] == groups
    # The shuffle Conv is gone: the two grouped 1x1s are the only Convs left.
    assert [node.op_type for node in graph.nodes].count("Conv") == 2
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind=kind)
    plan = runtime.plan.node_plans[graph.nodes.index(fused)]
    launched = [launch.kernel for launch in plan.launches]
    assert launched == (cpu_launches if kind == "cpu" else ["permute_channels", launched[-1]])
    np.testing.assert_allclose(runtime.run_dict({"x": x})["y"], ort(model, {"x": x})[0], rtol=1e-4, atol=1e-4)


def test_half_storage() -> None:
    model = shufflenet_v1_unit(136, 4)
    for init in model.graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(half_rounded(value), init.name))
    x = half_rounded(f32(1, 136, 6, 5))
    graph = convert_model(model, {"x": x.shape}, data_type="fp16_fp32")
    assert _fused(graph)
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind="cpu")
    # Four tensors stored in half on the way (BN folded into the 1x1s and the depthwise Conv):
    # a few units of half's 2^-11 relative to outputs of magnitude ~3.
    np.testing.assert_allclose(runtime.run_dict({"x": x})["y"], ort(model, {"x": x})[0], rtol=1e-2, atol=1e-2)


def test_a_shuffle_with_another_reader_is_left_alone() -> None:
    model = shufflenet_v1_unit(24, 4)
    model.graph.node.append(helper.make_node("Relu", ["shuffled"], ["also"]))
    model.graph.output.append(helper.make_tensor_value_info("also", onnx.TensorProto.FLOAT, None))
    graph = convert_model(model, {"x": (1, 24, 6, 5)})
    assert not _fused(graph)


def test_other_permutations_are_left_alone() -> None:
    # Transpose (0, 2, 1, 3, 4) of [N, 4, 6, H, W] is a shuffle; reversing the channels is not.
    model = shufflenet_v1_unit(24, 4)
    reverse = np.zeros((24, 24, 1, 1), np.float32)
    reverse[np.arange(24), np.arange(24)[::-1]] = 1.0
    nodes = list(model.graph.node)
    first = next(i for i, node in enumerate(nodes) if node.op_type == "Reshape")
    kept = [node for node in nodes if node.op_type not in ("Reshape", "Transpose")]
    kept.insert(first, helper.make_node("Conv", ["c", "reverse"], ["shuffled"]))
    inits = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    inits["reverse"] = reverse
    model = make(kept, {"x": [1, 24, 6, 5]}, ["y"], inits)
    x = f32(1, 24, 6, 5)
    graph = convert_model(model, {"x": x.shape})
    assert not _fused(graph)
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind="cpu")
    np.testing.assert_allclose(runtime.run_dict({"x": x})["y"], ort(model, {"x": x})[0], rtol=1e-4, atol=1e-4)


def test_a_separable_pair_keeps_its_fusion() -> None:
    # A group-1 1x1 after the depthwise Conv: separable_conv fuses the pair first.
    model = shufflenet_v1_unit(24, 4, pointwise_group=1)
    graph = convert_model(model, {"x": (1, 24, 6, 5)})
    ops = [node.op_type for node in graph.nodes]
    assert "SeparableConv" in ops and not _fused(graph)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
