"""passes/channel_gather.py: Concat/Slice/Split/shuffle chains become ChannelGathers."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make, ort, run, shufflenet_v2_units
from mace_cl_converter import pipeline, supported_ops
from mace_cl_converter.passes import channel_gather
from onnx import helper


@pytest.fixture(autouse=True)
def _gathers_as_channel_gather_leaves_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # gather_conv (the next pass) folds a gather that a 1x1 Conv reads into it: these tests
    # look at the gathers themselves.
    monkeypatch.setattr(pipeline, "PASSES", [p for p in pipeline.PASSES if p[0] != "gather_conv"])


@pytest.mark.parametrize("split", ["Split", "Slice"])
@pytest.mark.parametrize("channels", [12, 16])  # halves of 6 (mid-block) and 8 channels
def test_shufflenet_units_keep_only_the_gathers_that_convolutions_read(split: str, channels: int) -> None:
    units = 3
    model = shufflenet_v2_units(units, channels, split)
    x = f32(1, channels, 5, 4)
    graph, (ours,) = run(model, {"x": x})
    ops = [node.op_type for node in graph.nodes]
    # The first unit's split of the graph input keeps only the half its branch reads; after
    # it, one gather per branch input and one for the output: the bypassing halves are
    # never copied on their own.
    assert ops[0] == split and ops.count(split) == 1 and "Concat" not in ops
    assert sum(1 for name in graph.nodes[0].outputs if name) == 1
    assert ops.count("ChannelGather") == units
    # each branch: 1x1 Conv, then its depthwise Conv and 1x1 Conv as one SeparableConv
    assert (ops.count("Conv"), ops.count("SeparableConv")) == (units, units)
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-4, atol=1e-5)


def test_a_gather_reads_at_most_eight_tensors() -> None:
    # Each unit's bypassing half draws on one more branch output; past eight sources the
    # composed map reads the last intermediate tensor instead (which is then kept).
    model = shufflenet_v2_units(10, 8, "Split")
    x = f32(1, 8, 5, 4)
    graph, (ours,) = run(model, {"x": x})
    gathers = [node for node in graph.nodes if node.op_type == "ChannelGather"]
    assert gathers and max(len(node.inputs) for node in gathers) <= 8
    assert max(len(node.inputs) for node in gathers) > 2
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-4, atol=1e-5)


def test_a_concat_read_by_another_op_is_kept() -> None:
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Split", ["c", "sizes"], ["s0", "s1"], axis=1),
        helper.make_node("Add", ["s0", "s1"], ["y"]),
    ]
    model = make(
        nodes, {"a": [1, 3, 2, 2], "b": [1, 5, 2, 2]}, ["r", "y"], {"sizes": np.array([4, 4], np.int64)}
    )
    feeds = {"a": f32(1, 3, 2, 2), "b": f32(1, 5, 2, 2)}
    graph, ours = run(model, feeds)
    assert [node.op_type for node in graph.nodes][:2] == ["Concat", "Relu"]
    for mine, theirs in zip(ours, ort(model, feeds), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_graph_output_is_kept() -> None:
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "lo", "hi", "ax"], ["y"]),
    ]
    inits = {"lo": np.array([2], np.int64), "hi": np.array([6], np.int64), "ax": np.array([1], np.int64)}
    model = make(nodes, {"a": [1, 3, 2, 2], "b": [1, 5, 2, 2]}, ["c", "y"], inits)
    feeds = {"a": f32(1, 3, 2, 2), "b": f32(1, 5, 2, 2)}
    graph, ours = run(model, feeds)
    assert [node.op_type for node in graph.nodes] == ["Concat", "Slice"]
    for mine, theirs in zip(ours, ort(model, feeds), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_slice_of_a_concat_reads_the_concat_inputs() -> None:
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "lo", "hi", "ax"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    inits = {"lo": np.array([2], np.int64), "hi": np.array([-1], np.int64), "ax": np.array([-3], np.int64)}
    model = make(nodes, {"a": [2, 3, 2, 2], "b": [2, 5, 2, 2]}, ["y"], inits)
    feeds = {"a": f32(2, 3, 2, 2), "b": f32(2, 5, 2, 2)}
    graph, (ours,) = run(model, feeds)
    gather = graph.nodes[0]
    assert (gather.op_type, gather.inputs, gather.attrs["channels"]) == (
        "ChannelGather",
        ["a", "b"],
        [2, 3, 4, 5, 6],
    )
    np.testing.assert_array_equal(ours, ort(model, feeds)[0])


def test_a_gather_past_the_channel_code_range_is_not_written(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel's lane code holds channels below GATHER_INPUT_STRIDE (65536); with the limit
    # lowered to 4, the Slice reading channels 4..7 of the Concat (b's 1..4) stays as it is.
    monkeypatch.setattr(channel_gather, "GATHER_INPUT_STRIDE", 4)
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "lo", "hi", "ax"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    inits = {"lo": np.array([4], np.int64), "hi": np.array([8], np.int64), "ax": np.array([1], np.int64)}
    model = make(nodes, {"a": [1, 3, 2, 2], "b": [1, 5, 2, 2]}, ["y"], inits)
    feeds = {"a": f32(1, 3, 2, 2), "b": f32(1, 5, 2, 2)}
    graph, (ours,) = run(model, feeds)
    assert [node.op_type for node in graph.nodes] == ["Concat", "Slice", "Relu"]
    np.testing.assert_array_equal(ours, ort(model, feeds)[0])


def test_slices_with_steps_or_spatial_ranges_are_left_alone() -> None:
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "lo", "hi", "ax"], ["y"]),
    ]
    inits = {
        "lo": np.array([0, 1], np.int64),
        "hi": np.array([4, 2], np.int64),
        "ax": np.array([1, 2], np.int64),
    }
    model = make(nodes, {"a": [1, 3, 2, 2], "b": [1, 5, 2, 2]}, ["y"], inits)
    feeds = {"a": f32(1, 3, 2, 2), "b": f32(1, 5, 2, 2)}
    graph, (ours,) = run(model, feeds)
    assert [node.op_type for node in graph.nodes] == ["Concat", "Slice"]
    np.testing.assert_array_equal(ours, ort(model, feeds)[0])


def test_the_internal_op_is_not_listed_as_supported_onnx() -> None:
    # ONNX's checker rejects unknown default-domain ops when loading; the listing must not offer it.
    assert "ChannelGather" not in supported_ops.runtime_ops()
    assert "ChannelGather" not in supported_ops.describe()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
