"""passes/separable_conv.py: a depthwise Conv whose output only a 1x1 Conv reads becomes one
SeparableConv, which GPU plans run as one conv2d_gpu_tiled launch (-DDEPTHWISE_INPUT) and
CPU plans as one depthwise_conv1x1_o32 launch up to CPU_FUSED_MAX_OUT_C output channels, as
the two convolutions past it. Oracle: onnxruntime on the ONNX model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from converter_testing import f32, make, ort
from mace_cl import MaceRuntime
from mace_cl.model.graph import Graph, Node, TensorInfo
from mace_cl.planning.ops import conv as conv_ops
from mace_cl.planning.ops.base import OpError
from mace_cl.planning.ops.separable_conv import CPU_FUSED_MAX_OUT_C
from mace_cl.planning.planner import plan_graph
from mace_cl.testing import assert_close_half, device_under_test, half_rounded
from mace_cl_converter import convert_model
from onnx import helper


def _block(
    channels: int = 24,
    out_channels: int = 40,
    shape: tuple[int, int, int] = (1, 14, 13),
    kernel: int = 3,
    stride: int = 1,
    dilation: int = 1,
    dw_act: str | None = "Clip",
    pw_act: str | None = None,
    biases: bool = True,
    residual: bool = False,
    post_act: str | None = None,
) -> onnx.ModelProto:
    """x -> depthwise Conv (dw_act) -> 1x1 Conv (pw_act) [-> Add x] [-> post_act] -> y:
    MobileNet's block tail."""
    batch, h, w = shape
    pad = dilation * (kernel - 1) // 2
    dw_bias, pw_bias = (["DB"], ["PB"]) if biases else ([], [])
    attrs = {"group": channels, "pads": [pad] * 4, "strides": [stride] * 2, "dilations": [dilation] * 2}
    nodes = [helper.make_node("Conv", ["x", "DW", *dw_bias], ["d"], **attrs)]
    inits = {
        "DW": f32(channels, 1, kernel, kernel) / np.float32(kernel),
        "PW": f32(out_channels, channels, 1, 1) / np.float32(np.sqrt(channels)),
        "LO": np.array(0.0, np.float32),
        "HI": np.array(6.0, np.float32),
    }
    if biases:
        inits.update({"DB": f32(channels), "PB": f32(out_channels)})
    middle = "d"
    if dw_act == "Clip":
        nodes.append(helper.make_node("Clip", ["d", "LO", "HI"], ["da"]))
        middle = "da"
    elif dw_act is not None:
        nodes.append(helper.make_node(dw_act, ["d"], ["da"]))
        middle = "da"
    nodes.append(helper.make_node("Conv", [middle, "PW", *pw_bias], ["p"]))
    out = "p"
    if pw_act is not None:
        nodes.append(helper.make_node(pw_act, ["p"], ["pa"]))
        out = "pa"
    if residual:
        nodes.append(helper.make_node("Add", [out, "x"], ["r"]))
        out = "r"
    if post_act is not None:
        nodes.append(helper.make_node(post_act, [out], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", [out], ["y"]))
    return make(nodes, {"x": [batch, channels, h, w]}, ["y"], inits, opset=14)


def _runs(graph: Graph, feeds: dict) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per plan kind: the SeparableConv's kernels and the output."""
    results = {}
    for kind in ("cpu", "gpu"):
        runtime = MaceRuntime(graph, device=device_under_test(), plan_kind=kind)
        index = [node.op_type for node in graph.nodes].index("SeparableConv")
        kernels = [launch.kernel for launch in runtime.plan.node_plans[index].launches]
        results[kind] = (kernels, runtime.run_dict(feeds)["y"])
    return results


BLOCKS = {
    "mobilenet_v2_relu6": {},
    "stride2_no_act": {"stride": 2, "dw_act": None, "shape": (1, 15, 17)},
    "hard_swish_both_5x5": {"kernel": 5, "dw_act": "HardSwish", "pw_act": "HardSwish"},
    "dilated_relu_batch2": {"dilation": 2, "dw_act": "Relu", "shape": (2, 9, 11)},
    "odd_channels_no_biases": {"channels": 22, "out_channels": 13, "biases": False},
    "residual": {"out_channels": 24, "residual": True},
    "residual_then_relu": {"out_channels": 24, "residual": True, "post_act": "Relu"},
    "many_channels": {"channels": 160, "out_channels": 96, "shape": (1, 7, 7)},
    # sigmoid(0) = 0.5 in the padding lanes of the last block: the zero weight rows must cancel it
    "sigmoid_partial_block": {"channels": 22, "out_channels": 20, "dw_act": "Sigmoid"},
    # rows a multiple of 7 wide: each block of 7 pixels shares its input rows
    "rows_of_seven_partial_group": {"channels": 20, "out_channels": 40, "shape": (2, 7, 14)},
    "rows_of_seven_stride2": {"channels": 36, "stride": 2, "shape": (1, 28, 28)},
    # 196 pixels, 3 column pairs: fewer work-items than 7-pixel blocks, each loops over several
    "pixel_loop": {"channels": 24, "out_channels": 96, "shape": (1, 14, 14)},
    "wider_than_cpu_fusion": {"channels": 40, "out_channels": CPU_FUSED_MAX_OUT_C + 4, "shape": (1, 7, 9)},
}


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_depthwise_then_pointwise_becomes_one_node(block: str) -> None:
    params = BLOCKS[block]
    model = _block(**params)
    batch, h, w = params.get("shape", (1, 14, 13))
    x = f32(batch, params.get("channels", 24), h, w)
    graph = convert_model(model, {"x": x.shape})
    assert [node.op_type for node in graph.nodes] == ["SeparableConv"]
    node = graph.nodes[0]
    assert ("depthwise_activation" in node.attrs) == (params.get("dw_act", "Clip") is not None)
    expected = ort(model, {"x": x})[0]
    cpu_fused = params.get("out_channels", 40) <= CPU_FUSED_MAX_OUT_C
    for kind, (kernels, ours) in _runs(graph, {"x": x}).items():
        # One launch, the depthwise convolution computed as the 1x1 reads it (CPU plans: up
        # to CPU_FUSED_MAX_OUT_C output channels, two launches past it)
        if kind == "gpu":
            assert kernels == ["conv2d_gpu_tiled"]
        else:
            assert kernels == (["depthwise_conv1x1_o32"] if cpu_fused else ["depthwise_o16", "conv1x1_o32"])
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4, err_msg=kind)


def test_gpu_plan_computes_the_depthwise_input() -> None:
    graph = convert_model(_block(stride=2), {"x": (1, 24, 14, 13)})
    ((launch,),) = [plan.launches for plan in plan_graph(graph, device_kind="gpu").node_plans]
    options = launch.program.options
    assert "-DDEPTHWISE_INPUT" in options and "-DDW_ACTIVATION=ACT_CLIP" in options
    assert "-DPOINTWISE" not in options and "-DFILTER_H=3" in options


def test_cpu_plan_computes_the_depthwise_input() -> None:
    graph = convert_model(_block(residual=True, out_channels=24), {"x": (1, 24, 14, 13)})
    ((launch,),) = [plan.launches for plan in plan_graph(graph, device_kind="cpu").node_plans]
    assert launch.kernel == "depthwise_conv1x1_o32"
    options = launch.program.options
    assert "-DDEPTHWISE_INPUT" in options and "-DDW_ACTIVATION=ACT_CLIP" in options
    assert "-DFILTER_H=3" in options and "-DRESIDUAL" in options


@pytest.mark.parametrize("config", conv_ops.GPU_TILED_CONFIGS)
@pytest.mark.parametrize("split", [False, True])
def test_every_tile_shape_and_split_k(
    config: tuple[int, int, int, int], split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conv_ops, "GPU_TILED_CONFIGS", (config,))
    monkeypatch.setattr(conv_ops, "GPU_SPLIT_TARGET_ITEMS", 1 << 30 if split else 0)
    monkeypatch.setattr(conv_ops, "GPU_SPLIT_MIN_STEPS", 1)
    model = _block(channels=72, out_channels=36, shape=(1, 9, 10), stride=2, residual=False)
    x = f32(1, 72, 9, 10)
    graph = convert_model(model, {"x": x.shape})
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind="gpu")
    ((launch,),) = [plan.launches for plan in runtime.plan.node_plans]
    assert ("-DSPLIT_K" in launch.program.options) == split
    expected = ort(model, {"x": x})[0]
    for _ in range(2):  # split-K's arrival counts must be back at zero for the second run
        np.testing.assert_allclose(runtime.run_dict({"x": x})["y"], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_half_storage(kind: str) -> None:
    # Half-exact input and weights, so the kernels' own roundings are all that remain: both
    # plans round only their output (the depthwise result stays in registers).
    model = _block(channels=32, out_channels=48, dw_act="Relu")
    for init in model.graph.initializer:
        init.CopyFrom(onnx.numpy_helper.from_array(half_rounded(onnx.numpy_helper.to_array(init)), init.name))
    x = half_rounded(f32(1, 32, 14, 13))
    graph = convert_model(model, {"x": x.shape}, data_type="fp16_fp32")
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind=kind)
    expected = ort(model, {"x": x})[0]
    middle = np.maximum(ort(_tail_free(model), {"x": x})[0], 0.0)
    assert_close_half(
        runtime.run_dict({"x": x})["y"],
        expected,
        roundings=1,
        scale=float(max(np.abs(expected).max(), np.abs(middle).max() * 32)),
    )


def _tail_free(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` up to the depthwise Conv's output (the oracle's intermediate tensor)."""
    nodes = [node for node in model.graph.node if node.output[0] == "d"]
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name in ("DW", "DB")}
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return make(nodes, {"x": shape}, ["d"], inits)


@pytest.mark.parametrize(
    "change",
    ["read_twice", "graph_output", "strided_pointwise", "grouped_pointwise", "squeeze_excite_between"],
)
def test_left_alone(change: str) -> None:
    model = _block(dw_act=None)
    nodes = model.graph.node
    if change == "read_twice":
        nodes.append(helper.make_node("Relu", ["d"], ["d2"]))
        model.graph.output.append(helper.make_tensor_value_info("d2", onnx.TensorProto.FLOAT, None))
    elif change == "graph_output":
        model.graph.output.append(helper.make_tensor_value_info("d", onnx.TensorProto.FLOAT, None))
    elif change == "strided_pointwise":
        nodes[1].attribute.append(helper.make_attribute("strides", [2, 2]))
    elif change == "grouped_pointwise":
        nodes[1].attribute.append(helper.make_attribute("group", 2))
        weights = next(i for i in model.graph.initializer if i.name == "PW")
        weights.CopyFrom(onnx.numpy_helper.from_array(f32(40, 12, 1, 1), "PW"))
    else:  # EfficientNet: the depthwise output is pooled for a gate that scales it
        model = _squeeze_excite_between()
    model = onnx.shape_inference.infer_shapes(model)
    x = f32(1, 24, 14, 13)
    graph = convert_model(model, {"x": x.shape})
    assert "SeparableConv" not in [node.op_type for node in graph.nodes]
    ours = MaceRuntime(graph, device=device_under_test()).run_dict({"x": x})
    for name, value in zip([o.name for o in model.graph.output], ort(model, {"x": x}), strict=True):
        np.testing.assert_allclose(ours[name], value, rtol=1e-4, atol=1e-4)


def _squeeze_excite_between() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "DW", "DB"], ["d"], group=24, pads=[1] * 4),
        helper.make_node("GlobalAveragePool", ["d"], ["g"]),
        helper.make_node("Conv", ["g", "W1"], ["h"]),
        helper.make_node("Relu", ["h"], ["ha"]),
        helper.make_node("Conv", ["ha", "W2"], ["e"]),
        helper.make_node("Sigmoid", ["e"], ["s"]),
        helper.make_node("Mul", ["d", "s"], ["ds"]),
        helper.make_node("Conv", ["ds", "PW", "PB"], ["y"]),
    ]
    inits = {
        "DW": f32(24, 1, 3, 3),
        "DB": f32(24),
        "W1": f32(6, 24, 1, 1),
        "W2": f32(24, 6, 1, 1),
        "PW": f32(40, 24, 1, 1),
        "PB": f32(40),
    }
    return make(nodes, {"x": [1, 24, 14, 13]}, ["y"], inits)


def test_residual_of_another_shape_is_named() -> None:
    node = Node("SeparableConv", "block", ["x", "dw", "", "pw", "", "r"], ["y"], {"group": 8})
    graph = Graph(
        [TensorInfo("x", (1, 8, 6, 6)), TensorInfo("r", (1, 8, 6, 5))],
        [],
        [node],
        {"dw": np.zeros((8, 1, 1, 1), np.float32), "pw": np.zeros((8, 8, 1, 1), np.float32)},
    )
    for kind in ("cpu", "gpu"):
        with pytest.raises(OpError, match=r"node 'block' \(SeparableConv\): the residual \(input 5\)"):
            plan_graph(graph, device_kind=kind)


@pytest.mark.parametrize(
    ("runtime", "bias", "message"),
    [
        ("pw", None, r"the 1x1 weights \(input 3\) must be a graph constant"),
        ("dw", None, r"the depthwise weights \(input 1\) must be a graph constant"),
        ("", 2, r"the depthwise bias \(input 2\) must have shape \[8\], got \[5\]"),
        ("", 4, r"the 1x1 bias \(input 4\) must have shape \[8\], got \[5\]"),
    ],
)
def test_errors_name_this_nodes_inputs(runtime: str, bias: int | None, message: str) -> None:
    constants = {"dw": np.zeros((8, 1, 3, 3), np.float32), "pw": np.zeros((8, 8, 1, 1), np.float32)}
    inputs = [TensorInfo("x", (1, 8, 6, 6))]
    if runtime:
        inputs.append(TensorInfo(runtime, constants.pop(runtime).shape))
    names = ["x", "dw", "", "pw", ""]
    if bias is not None:
        names[bias] = "b"
        constants["b"] = np.zeros(5, np.float32)
    node = Node("SeparableConv", "block", names, ["y"], {"group": 8, "pads": [1] * 4})
    graph = Graph(inputs, [], [node], constants)
    for kind in ("cpu", "gpu"):
        with pytest.raises(OpError, match=r"node 'block' \(SeparableConv\): " + message):
            plan_graph(graph, device_kind=kind)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
