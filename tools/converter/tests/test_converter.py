"""Converter unit tests: loading, input shapes, import semantics, each pass, the CLI.

Numerical checks compare the runtime with onnxruntime on tiny graphs; structural
checks look at the converted graph (which nodes a pass removed or fused).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[2]
for _path in (_REPO / "runtime", _HERE.parent):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.model.model_file import read_model  # noqa: E402
from mace_cl_converter import (  # noqa: E402
    ConversionError,
    InputShapeError,
    ModelLoadError,
    UnsupportedOpError,
    convert_model,
)
from mace_cl_converter.input_shapes import parse_input_shape  # noqa: E402

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


# ---- loading and inputs ------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage\xff\xff\xff", None])
def test_bad_files_name_the_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "bad.onnx"
    if content is None:  # a truncated real model
        content = conv_bn_relu_model().SerializeToString()[:200]
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=r"bad\.onnx"):
        convert_model(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"nope\.onnx"):
        convert_model(tmp_path / "nope.onnx")


def test_old_opset_is_refused_with_reason() -> None:
    model = make([helper.make_node("Relu", ["x"], ["y"])], {"x": [1, 2]}, ["y"], opset=6)
    with pytest.raises(ModelLoadError, match="legacy broadcasting"):
        convert_model(model)


def test_every_dynamic_dim_is_listed() -> None:
    model = make(
        [helper.make_node("Add", ["a", "b"], ["y"])], {"a": ["N", 3, "H", 4], "b": ["N", 3, "H", 4]}, ["y"]
    )
    with pytest.raises(InputShapeError) as info:
        convert_model(model)
    text = str(info.value)
    assert "'a': dim 0 (N), dim 2 (H)" in text and "'b': dim 0 (N), dim 2 (H)" in text


def test_user_shapes_fix_dynamic_dims_and_are_checked() -> None:
    model = make([helper.make_node("Relu", ["a"], ["y"])], {"a": ["N", 3]}, ["y"])
    assert convert_model(model, {"a": (2, 3)}).outputs[0].shape == (2, 3)
    with pytest.raises(InputShapeError, match="fixes it to 3"):
        convert_model(model, {"a": (2, 4)})
    with pytest.raises(InputShapeError, match="not a graph input"):
        convert_model(model, {"a": (2, 3), "zz": (1,)})
    assert parse_input_shape("in:0=1,3,224,224") == ("in:0", (1, 3, 224, 224))


def test_unsupported_op_error_names_op_node_opset_and_list() -> None:
    model = make(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Erf", ["r"], ["y"], name="my_erf")],
        {"x": [1, 4]},
        ["y"],
    )
    with pytest.raises(UnsupportedOpError) as info:
        convert_model(model)
    text = str(info.value)
    for part in ("my_erf", "Erf", "opset 13", "supported ONNX ops:", "Conv"):
        assert part in text


# ---- import semantics ------------------------------------------------------------


def test_softmax_opset11_coerces_to_2d() -> None:
    model = make([helper.make_node("Softmax", ["x"], ["y"], axis=1)], {"x": [2, 3, 4, 5]}, ["y"], opset=11)
    x = f32(2, 3, 4, 5)
    _, (ours,) = run(model, {"x": x})
    flat = x.reshape(2, -1)
    expected = np.exp(flat - flat.max(1, keepdims=True)) / np.exp(flat - flat.max(1, keepdims=True)).sum(
        1, keepdims=True
    )
    np.testing.assert_allclose(ours, expected.reshape(x.shape), rtol=1e-5, atol=1e-6)


def test_attribute_forms_of_old_opsets() -> None:
    nodes = [
        helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0]),
        helper.make_node("Squeeze", ["u"], ["s"], axes=[0]),
        helper.make_node("Clip", ["s"], ["c"], min=-0.5, max=0.5),
        helper.make_node("Pad", ["c"], ["y"], pads=[0, 1, 0, 2], value=1.5),
    ]
    model = make(nodes, {"x": [3, 4]}, ["y"], opset=10)
    x = f32(3, 4)
    _, (ours,) = run(model, {"x": x})
    np.testing.assert_allclose(
        ours, np.pad(np.clip(x, -0.5, 0.5), ((0, 0), (1, 2)), constant_values=1.5), rtol=1e-6
    )


def test_constant_nodes_and_shape_chains_fold() -> None:
    nodes = [
        helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.array([2], np.int64))),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Cast", ["n1"], ["n1f"], to=TensorProto.INT64),
        helper.make_node("Concat", ["n1f", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    model = make(
        nodes,
        {"x": [2, 3, 4]},
        ["y"],
        {"zero": np.array(0, np.int64), "axes0": np.array([0], np.int64), "minus1": np.array([-1], np.int64)},
    )
    graph, (ours,) = run(model, {"x": f32(2, 3, 4)})
    assert [n.op_type for n in graph.nodes] == ["Reshape"]
    assert ours.shape == (2, 12)


# ---- passes ------------------------------------------------------------------------


def test_batchnorm_and_relu_fold_into_conv() -> None:
    model = conv_bn_relu_model()
    x = f32(1, 3, 7, 9)
    graph, (ours,) = run(model, {"x": x})
    assert [(n.op_type, n.attrs.get("activation")) for n in graph.nodes] == [("Conv", "relu")]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-4, atol=1e-5)


def test_standalone_batchnorm_becomes_mul_add() -> None:
    inits = {
        "s": np.array([1.2, 0.7], np.float32),
        "b": np.array([0.1, -0.2], np.float32),
        "m": np.array([0.3, 0.0], np.float32),
        "v": np.array([0.9, 1.1], np.float32),
    }
    model = make(
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
        {"x": [2, 2, 3, 3]},
        ["y"],
        inits,
        opset=9,
    )
    x = f32(2, 2, 3, 3)
    graph, (ours,) = run(model, {"x": x})
    assert [n.op_type for n in graph.nodes] == ["Mul", "Add"]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_bias_add_folds_into_gemm_and_activation_fuses() -> None:
    inits = {"W": f32(5, 4), "C": f32(5), "bias": f32(5)}
    nodes = [
        helper.make_node("Gemm", ["x", "W", "C"], ["g"], transB=1, beta=0.5),
        helper.make_node("Add", ["g", "bias"], ["a"]),
        helper.make_node("LeakyRelu", ["a"], ["y"], alpha=0.2),
    ]
    model = make(nodes, {"x": [3, 4]}, ["y"], inits)
    x = f32(3, 4)
    graph, (ours,) = run(model, {"x": x})
    assert [n.op_type for n in graph.nodes] == ["Gemm"]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_identity_dropout_removed_and_output_name_kept() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Dropout", ["r"], ["d"]),
        helper.make_node("Identity", ["d"], ["y"]),
    ]
    graph, (ours,) = run(make(nodes, {"x": [2, 5]}, ["y"]), {"x": f32(2, 5)})
    assert [n.op_type for n in graph.nodes] == ["Relu"] and graph.nodes[0].outputs == ["y"]
    assert ours.min() >= 0


def test_adjacent_transposes_cancel_but_io_layout_is_kept() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t1"], perm=[0, 3, 1, 2]),
        helper.make_node("Relu", ["t1"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t2"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["t2"], ["t3"], perm=[0, 3, 1, 2]),
        helper.make_node("Sigmoid", ["t3"], ["s"]),
        helper.make_node("Transpose", ["s"], ["y"], perm=[0, 2, 3, 1]),
    ]
    model = make(nodes, {"x": [1, 4, 5, 3]}, ["y"])
    x = f32(1, 4, 5, 3)
    graph, (ours,) = run(model, {"x": x})
    assert [n.op_type for n in graph.nodes] == ["Transpose", "Relu", "Sigmoid", "Transpose"]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-6, atol=1e-6)


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


def test_activation_after_residual_add_fuses_too() -> None:
    # ResNet: relu(conv(x) + x): the Add fuses first, then the Relu.
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c", "x"], ["a"]),
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


def test_channel_shuffle_becomes_permutation_conv() -> None:
    nodes = [
        helper.make_node("Reshape", ["x", "s5"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "s4"], ["y"]),
    ]
    model = make(
        nodes,
        {"x": [1, 6, 3, 2]},
        ["y"],
        {"s5": np.array([1, 2, 3, 3, 2], np.int64), "s4": np.array([1, 6, 3, 2], np.int64)},
    )
    x = f32(1, 6, 3, 2)
    graph, (ours,) = run(model, {"x": x})
    assert [n.op_type for n in graph.nodes] == ["Conv"]
    np.testing.assert_array_equal(ours, ort(model, {"x": x})[0])


@pytest.mark.parametrize(
    ("mid", "perm", "mode"),
    [
        ([1, 2, 2, 2, 3, 2], [0, 1, 4, 2, 5, 3], "CRD"),  # PyTorch PixelShuffle's export
        ([1, 2, 2, 2, 3, 2], [0, 3, 4, 1, 5, 2], "DCR"),  # ONNX DepthToSpace's DCR definition
    ],
)
def test_pixel_shuffle_becomes_depth_to_space(mid: list[int], perm: list[int], mode: str) -> None:
    nodes = [
        helper.make_node("Reshape", ["x", "s6"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=perm),
        helper.make_node("Reshape", ["t", "s4"], ["y"]),
    ]
    model = make(
        nodes,
        {"x": [1, 8, 3, 2]},
        ["y"],
        {"s6": np.array(mid, np.int64), "s4": np.array([1, 2, 6, 4], np.int64)},
    )
    x = f32(1, 8, 3, 2)
    graph, (ours,) = run(model, {"x": x})
    assert [(n.op_type, n.attrs.get("mode"), n.attrs.get("blocksize")) for n in graph.nodes] == [
        ("DepthToSpace", mode, 2)
    ]
    np.testing.assert_array_equal(ours, ort(model, {"x": x})[0])


def test_other_rank_6_chains_are_not_depth_to_space() -> None:
    # Swaps the two block axes against CRD: neither DepthToSpace mode, so the rank-6
    # Reshape stays and is reported.
    nodes = [
        helper.make_node("Reshape", ["x", "s6"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 1, 4, 3, 5, 2]),
        helper.make_node("Reshape", ["t", "s4"], ["y"]),
    ]
    model = make(
        nodes,
        {"x": [1, 8, 3, 2]},
        ["y"],
        {"s6": np.array([1, 2, 2, 2, 3, 2], np.int64), "s4": np.array([1, 2, 6, 4], np.int64)},
    )
    with pytest.raises(ConversionError, match="rank 6"):
        convert_model(model, {})


def test_each_node_is_planned_once_and_the_final_graph_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planning packs weights (seconds for a large Gemm), so the converter's repeated shape
    inference must reuse plans, and the final graph is planned by one plan_graph call."""
    from collections import Counter

    import mace_cl.planning.planner
    from mace_cl.planning.ops import registry
    from mace_cl_converter.passes import shape_inference

    calls: dict[str, Counter] = {"inference": Counter(), "final": Counter()}

    def counting(kind: str):
        def plan(node, inputs, context=None):
            calls[kind][node.name] += 1
            return registry.plan_node(node, inputs, context)

        return plan

    monkeypatch.setattr(shape_inference, "plan_node", counting("inference"))
    monkeypatch.setattr(mace_cl.planning.planner, "plan_node", counting("final"))
    c = 8
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Reshape", ["r", "flat"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    inits = {
        "w": f32(c, 3, 3, 3),
        "s": f32(c) + 2,
        "b": f32(c),
        "m": f32(c),
        "v": np.abs(f32(c)) + 1,
        "flat": np.array([1, -1], np.int64),
        "fc": f32(4, c * 16),
    }
    graph = convert_model(make(nodes, {"x": [1, 3, 4, 4]}, ["y"], inits), {})
    assert [n.op_type for n in graph.nodes] == ["Conv", "Reshape", "Gemm"]
    assert max(calls["inference"].values()) == 1, calls["inference"]
    assert calls["final"] == Counter({n.name: 1 for n in graph.nodes})


def test_dead_nodes_and_constants_removed() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Mul", ["x", "k"], ["unused"])]
    graph = convert_model(make(nodes, {"x": [2]}, ["y"], {"k": f32(2)}), {})
    assert [n.op_type for n in graph.nodes] == ["Relu"] and not graph.constants


def test_constant_output_is_a_clear_error() -> None:
    model = make(
        [helper.make_node("Add", ["k", "k"], ["y"]), helper.make_node("Relu", ["x"], ["z"])],
        {"x": [2]},
        ["y", "z"],
        {"k": f32(2)},
    )
    with pytest.raises(ConversionError, match="'y' is a constant"):
        convert_model(model)


# ---- malformed tensors and parameters (found by fuzzing; onnx.checker lets them through) ----


def gemm_model() -> onnx.ModelProto:
    return make(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
        {"x": [2, 6]},
        ["y"],
        {"w": f32(3, 6), "b": f32(3)},
    )


def _init(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def test_initializer_in_typed_field_with_wrong_count_names_it() -> None:
    # Data in float_data instead of raw_data: numpy_helper raised a bare reshape ValueError.
    model = gemm_model()
    tensor = _init(model, "b")
    tensor.ClearField("raw_data")
    tensor.float_data.extend([1.0, 2.0])
    with pytest.raises(ConversionError, match=r"initializer 'b' holds 2 values, but dims \[3\] need 3"):
        convert_model(model)


@pytest.mark.parametrize(("dims", "match"), [([-1, 6], "negative dims"), ([2**40], "need 4398046511104")])
def test_initializer_with_impossible_dims_names_it(dims: list[int], match: str) -> None:
    model = gemm_model()
    tensor = _init(model, "w")
    del tensor.dims[:]
    tensor.dims.extend(dims)
    with pytest.raises(ConversionError, match=f"initializer 'w'.*{match}"):
        convert_model(model)


@pytest.mark.parametrize("dtype", [TensorProto.STRING, TensorProto.COMPLEX64, 999])
def test_initializer_of_unreadable_element_type_names_it(dtype: int) -> None:
    model = gemm_model()
    tensor = _init(model, "b")
    tensor.data_type = dtype
    if dtype == TensorProto.STRING:  # the checker refuses strings in raw_data
        tensor.ClearField("raw_data")
        tensor.string_data.extend([b"a", b"b", b"c"])
    with pytest.raises(ConversionError, match=r"initializer 'b' has .*numeric and bool tensors only"):
        convert_model(model)


def test_output_of_unknown_element_type_is_a_conversion_error() -> None:
    # TensorProto.DataType.Name(999) raised ValueError while the message was being built.
    model = gemm_model()
    model.graph.output[0].type.tensor_type.elem_type = 999
    with pytest.raises(ConversionError, match=r"graph output 'y' is element type 999 .*float32 tensors only"):
        convert_model(model)


def test_constant_node_with_corrupt_tensor_names_node_and_attribute() -> None:
    model = make(
        [
            helper.make_node("Constant", [], ["k"], name="const", value=numpy_helper.from_array(f32(4), "k")),
            helper.make_node("Add", ["x", "k"], ["y"]),
        ],
        {"x": [4]},
        ["y"],
    )
    model.graph.node[0].attribute[0].t.raw_data = b"\0" * 5
    with pytest.raises(ConversionError, match="node 'const': attribute 'value' has 5 bytes of data"):
        convert_model(model)


def test_constant_node_with_nan_names_node() -> None:
    model = make(
        [
            helper.make_node("Constant", [], ["k"], name="const", value_floats=[1.0, float("nan")]),
            helper.make_node("Add", ["x", "k"], ["y"]),
        ],
        {"x": [2]},
        ["y"],
    )
    with pytest.raises(
        ConversionError, match=r"node 'const' .*attribute 'value_floats' holds NaN or infinite"
    ):
        convert_model(model)


def test_non_utf8_string_attribute_is_a_conversion_error() -> None:
    model = make(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2])],
        {"x": [1, 1, 4, 4]},
        ["y"],
    )
    model.graph.node[0].attribute.append(helper.make_attribute("auto_pad", b"\xff\xfe"))
    with pytest.raises(ConversionError, match="node 'pool': attribute 'auto_pad' is not valid UTF-8"):
        convert_model(model)


@pytest.mark.parametrize("param", ["s", "b", "m", "v"])
def test_batchnorm_parameter_not_per_channel_names_node_and_input(param: str) -> None:
    # Was a numpy broadcast/reshape ValueError from the BatchNormalization lowering.
    model = conv_bn_relu_model()
    tensor = _init(model, param)
    tensor.CopyFrom(numpy_helper.from_array(f32(4), param))  # 4 values, 6 channels
    with pytest.raises(
        ConversionError, match=f"BatchNormalization.*input '{param}' has 4 values, .* 6 channels"
    ):
        convert_model(model)


def test_batchnorm_single_value_parameters_apply_to_every_channel() -> None:
    # Stricter than needed by the converter, onnxruntime wants [C]; one value per
    # parameter is accepted here (as before) and means the same value for each channel.
    model, repeated = conv_bn_relu_model(), onnx.ModelProto()
    repeated.CopyFrom(model)
    for name in ("m", "s"):
        first = numpy_helper.to_array(_init(model, name))[:1]
        _init(model, name).CopyFrom(numpy_helper.from_array(first, name))
        _init(repeated, name).CopyFrom(numpy_helper.from_array(np.repeat(first, 6), name))
    x = f32(1, 3, 7, 9)
    (want,) = ort(repeated, {"x": x})
    _, (got,) = run(model, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_batchnorm_negative_variance_names_node() -> None:
    model = conv_bn_relu_model()
    _init(model, "v").CopyFrom(numpy_helper.from_array(-np.ones(6, np.float32), "v"))
    with pytest.raises(ConversionError, match=r"BatchNormalization.*var \+ epsilon is not positive"):
        convert_model(model)


# ---- CLI ------------------------------------------------------------------------------

CLI = _HERE.parent / "mace_convert.py"


def test_cli_writes_model_and_reports_errors(tmp_path: Path) -> None:
    source = tmp_path / "net.onnx"
    onnx.save(conv_bn_relu_model(), str(source))
    out = tmp_path / "net.mace"
    done = subprocess.run(
        [sys.executable, str(CLI), str(source), "-o", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    stored = read_model(out)
    assert stored.metadata["name"] == "net" and [n.op_type for n in stored.graph.nodes] == ["Conv"]

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"")
    failed = subprocess.run(
        [sys.executable, str(CLI), str(bad), "-o", str(tmp_path / "x.mace")], capture_output=True, text=True
    )
    assert failed.returncode == 2 and "bad.onnx" in failed.stderr
    assert not (tmp_path / "x.mace").exists() and not list(tmp_path.glob(".x.mace*"))
    help_text = subprocess.run([sys.executable, str(CLI), "--help"], capture_output=True, text=True).stdout
    assert "--input-shape" in help_text


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
