"""Helpers shared by the converter's tests (one test file per module or pass beside this one).

Tiny ONNX graphs built in memory, converted and run by the runtime, with onnxruntime as the
oracle: numerical checks compare the two, structural checks look at the converted graph
(which nodes a pass removed or fused).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
CONVERTER = HERE.parent  # tools/converter
REPO = HERE.parents[2]
# Run directly (python3 tools/converter/tests/test_<x>.py), the runtime and the converter are
# found from this file; under Bazel their py_library imports put them on the path already.
for _path in (REPO / "runtime", CONVERTER):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl import MaceRuntime  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402

RNG = np.random.default_rng(7)


def make(nodes, inputs, outputs, inits=(), opset=13) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    import onnxruntime

    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, feeds
    )


def run(model: onnx.ModelProto, feeds: dict, **kw) -> tuple:
    graph = convert_model(model, {k: v.shape for k, v in feeds.items()}, **kw)
    out = MaceRuntime(graph).run_dict(feeds)
    return graph, [out[o.name] for o in model.graph.output]


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def conv_bn_relu_model(opset: int = 13) -> onnx.ModelProto:
    inits = {
        "W": f32(6, 3, 3, 3),
        "B": f32(6),
        "s": RNG.uniform(0.5, 1.5, 6).astype(np.float32),
        "b": f32(6),
        "m": f32(6),
        "v": RNG.uniform(0.5, 1.5, 6).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"]),
        helper.make_node("Relu", ["n"], ["y"]),
    ]
    return make(nodes, {"x": [1, 3, 7, 9]}, ["y"], inits, opset)


def gemm_model() -> onnx.ModelProto:
    return make(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
        {"x": [2, 6]},
        ["y"],
        {"w": f32(3, 6), "b": f32(3)},
    )


def initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def shufflenet_v2_units(units: int, channels: int, split: str) -> onnx.ModelProto:
    """ShuffleNetV2's stride-1 units as torchvision exports them: split the channels in
    halves (``split``: one Split, or two Slices), a 1x1-depthwise-1x1 branch on the second
    half, Concat, channel shuffle (Reshape-Transpose-Reshape), next unit."""
    half = channels // 2
    nodes, inits = [], {}
    inits["s5"] = np.array([1, 2, half, 5, 4], np.int64)
    inits["s4"] = np.array([1, channels, 5, 4], np.int64)
    x = "x"
    for u in range(units):
        if split == "Split":
            inits["halves"] = np.array([half, half], np.int64)
            nodes.append(helper.make_node("Split", [x, "halves"], [f"a{u}", f"b{u}"], axis=1))
        else:
            for name, (lo, hi) in ((f"a{u}", (0, half)), (f"b{u}", (half, channels))):
                inits[f"{name}_lo"], inits[f"{name}_hi"] = np.array([lo], np.int64), np.array([hi], np.int64)
                inits["axis1"] = np.array([1], np.int64)
                nodes.append(helper.make_node("Slice", [x, f"{name}_lo", f"{name}_hi", "axis1"], [name]))
        # Scaled by fan-in so that values stay near 1 through many units.
        inits[f"w1_{u}"] = f32(half, half, 1, 1) / np.float32(np.sqrt(half))
        inits[f"wd_{u}"] = f32(half, 1, 3, 3) / np.float32(3)
        inits[f"w2_{u}"] = f32(half, half, 1, 1) / np.float32(np.sqrt(half))
        nodes += [
            helper.make_node("Conv", [f"b{u}", f"w1_{u}"], [f"p{u}"]),
            helper.make_node("Relu", [f"p{u}"], [f"q{u}"]),
            helper.make_node("Conv", [f"q{u}", f"wd_{u}"], [f"d{u}"], group=half, pads=[1, 1, 1, 1]),
            helper.make_node("Conv", [f"d{u}", f"w2_{u}"], [f"e{u}"]),
            helper.make_node("Relu", [f"e{u}"], [f"r{u}"]),
            helper.make_node("Concat", [f"a{u}", f"r{u}"], [f"c{u}"], axis=1),
            helper.make_node("Reshape", [f"c{u}", "s5"], [f"m{u}"]),
            helper.make_node("Transpose", [f"m{u}"], [f"t{u}"], perm=[0, 2, 1, 3, 4]),
            helper.make_node("Reshape", [f"t{u}", "s4"], [f"y{u}"]),
        ]
        x = f"y{u}"
    return make(nodes, {"x": [1, channels, 5, 4]}, [x], inits)
