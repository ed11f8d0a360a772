"""passes/depthwise_squeeze_excite.py: a depthwise Conv and the SqueezeExcite gate of its
output become one DepthwiseSqueezeExcite, checked against onnxruntime on CPU and GPU plans."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from converter_testing import f32, make, ort
from mace_cl.execution import engine
from mace_cl.execution.engine import MaceRuntime
from mace_cl.planning.ops import pooling as pooling_ops
from mace_cl.planning.planner import plan_graph
from mace_cl.testing import device_under_test, half_rounded
from mace_cl_converter import convert_model
from onnx import helper


def _block(
    channels: int = 24,
    shape: tuple[int, int] = (14, 13),
    stride: int = 1,
    kernel: int = 3,
    hidden: int = 6,
    out_channels: int = 16,
    gate_op: str = "HardSigmoid",
    biases: bool = True,
    batch: int = 1,
) -> onnx.ModelProto:
    """x -> depthwise Conv (BN folded, HardSwish) -> squeeze-excite gate -> Mul -> 1x1 Conv:
    MobileNetV3's block (EfficientNet's: Sigmoid gate, swish)."""
    pad = kernel // 2
    b = (["DB"], ["B1"], ["B2"]) if biases else ([], [], [])
    nodes = [
        helper.make_node(
            "Conv", ["x", "DW", *b[0]], ["d"], group=channels, pads=[pad] * 4, strides=[stride, stride]
        ),
        helper.make_node("HardSwish", ["d"], ["da"]),
        helper.make_node("GlobalAveragePool", ["da"], ["g"]),
        helper.make_node("Conv", ["g", "W1", *b[1]], ["h"]),
        helper.make_node("Relu", ["h"], ["ha"]),
        helper.make_node("Conv", ["ha", "W2", *b[2]], ["e"]),
        helper.make_node(gate_op, ["e"], ["s"]),
        helper.make_node("Mul", ["da", "s"], ["m"]),
        helper.make_node("Conv", ["m", "PW"], ["y"]),
    ]
    inits = {
        "DW": f32(channels, 1, kernel, kernel) / np.float32(kernel),
        "DB": f32(channels),
        "W1": f32(hidden, channels, 1, 1) / np.float32(np.sqrt(channels)),
        "B1": f32(hidden),
        "W2": f32(channels, hidden, 1, 1) / np.float32(np.sqrt(hidden)),
        "B2": f32(channels),
        "PW": f32(out_channels, channels, 1, 1) / np.float32(np.sqrt(channels)),
    }
    if not biases:
        inits = {name: value for name, value in inits.items() if name not in ("DB", "B1", "B2")}
    return make(nodes, {"x": [batch, channels, *shape]}, ["y"], inits, opset=14)  # HardSwish: opset 14


# (channels, pixels, stride, kernel, hidden, gate, biases, batch): what the GPU plan's
# work-groups cover (SE_SQUEEZE_BLOCKS = 8 channel blocks, 1024 work-items: 128 pixels each).
CASES = {
    "mobilenetv3": (24, (14, 13), 1, 3, 6, "HardSigmoid", True, 1),  # 6 blocks, 182 pixels: 2 groups
    "efficientnet_5x5_stride2": (40, (28, 28), 2, 5, 10, "Sigmoid", True, 1),  # 10 blocks -> 2 slices
    "wide": (120, (7, 7), 1, 3, 32, "Sigmoid", True, 1),  # 30 blocks in 4 slices, 49 pixels in one
    "channels_mid_block": (10, (9, 20), 1, 3, 3, "HardSigmoid", True, 1),
    "no_biases": (24, (14, 13), 1, 3, 6, "Sigmoid", False, 1),  # the three biases omitted
    "two_images": (40, (15, 16), 1, 3, 10, "Sigmoid", True, 2),  # an arrival count per image
}


@pytest.mark.parametrize("fence", [True, False], ids=["fence", "no_fence"])
@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_depthwise_and_gate_become_one_node(
    case: str, kind: str, fence: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind == "cpu" and not fence:
        pytest.skip("the fence only changes GPU plans")
    monkeypatch.setattr(engine, "has_device_fence", lambda device: fence)
    channels, shape, stride, kernel, hidden, gate_op, biases, batch = CASES[case]
    model = _block(channels, shape, stride, kernel, hidden, gate_op=gate_op, biases=biases, batch=batch)
    x = f32(batch, channels, *shape)
    graph = convert_model(model, {"x": x.shape})
    assert [node.op_type for node in graph.nodes] == ["DepthwiseSqueezeExcite", "Conv"]
    fused = graph.nodes[0]
    assert fused.attrs["depthwise_activation"] == "hard_swish" and fused.attrs["hidden_activation"] == "relu"
    assert [bool(name) for name in fused.inputs] == [True, True, biases, True, biases, True, biases]
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind=kind)
    kernels = [launch.kernel for launch in runtime.plan.node_plans[0].launches]
    if kind == "cpu":
        assert kernels[0] == "depthwise_o16" and kernels[-1] == "squeeze_excite"
    elif fence:
        assert kernels == ["depthwise_se_gpu"]  # one launch
    else:
        assert kernels == ["depthwise_gpu", "se_squeeze", "se_excite"]
    for seed in (1, 2, 1):  # a second run needs the arrival counts back at zero
        x = np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
        expected = ort(model, {"x": x})[0]
        np.testing.assert_allclose(runtime.run_dict({"x": x})["y"], expected, rtol=1e-4, atol=1e-4)


def test_gpu_work_groups() -> None:
    # EfficientNet-B0's first gate: 32 channels (8 blocks, one slice) at 112x112, hidden 8:
    # 12544 pixels in 98 work-groups of 128, whose partial sums the last one adds up.
    model = _block(32, (112, 112), 1, 3, 8, gate_op="Sigmoid")
    graph = convert_model(model, {"x": (1, 32, 112, 112)})
    (launch,) = plan_graph(graph, device_kind="gpu", device_fence=True).node_plans[0].launches
    assert launch.local_size == (8, pooling_ops.SE_LAST_GROUP_LOCAL_SIZE // 8, 1)
    assert launch.global_size == (8, 98 * 128, 1)
    assert "-DGATE_ACTIVATION=ACT_SIGMOID" in launch.program.options
    assert "-DACTIVATION=ACT_HARD_SWISH" in launch.program.options


def test_half_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    # Half-exact input and weights; the gate rounds once to half, the depthwise output too.
    # The one launch (the fence as on NVIDIA's OpenCL) is what half storage changes.
    monkeypatch.setattr(engine, "has_device_fence", lambda device: True)
    model = _block()
    for init in model.graph.initializer:
        init.CopyFrom(onnx.numpy_helper.from_array(half_rounded(onnx.numpy_helper.to_array(init)), init.name))
    x = half_rounded(f32(1, 24, 14, 13))
    graph = convert_model(model, {"x": x.shape}, data_type="fp16_fp32")
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind="gpu")
    assert [launch.kernel for launch in runtime.plan.node_plans[0].launches] == ["depthwise_se_gpu"]
    expected = ort(model, {"x": x})[0]
    np.testing.assert_allclose(runtime.run_dict({"x": x})["y"], expected, rtol=1e-2, atol=1e-2)


def test_a_gate_on_a_plain_conv_is_left_alone() -> None:
    model = _block()
    dw = model.graph.node[0]
    del dw.attribute[:]
    dw.attribute.extend([helper.make_attribute("pads", [1, 1, 1, 1])])
    weights = next(init for init in model.graph.initializer if init.name == "DW")
    weights.CopyFrom(onnx.numpy_helper.from_array(f32(24, 24, 3, 3), "DW"))
    graph = convert_model(model, {"x": (1, 24, 14, 13)})
    assert "DepthwiseSqueezeExcite" not in [node.op_type for node in graph.nodes]
    assert "SqueezeExcite" in [node.op_type for node in graph.nodes]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
