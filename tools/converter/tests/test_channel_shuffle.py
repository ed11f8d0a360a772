"""passes/channel_shuffle.py: channel shuffles become a permutation Conv, pixel shuffles DepthToSpace."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make, ort, run
from mace_cl_converter import ConversionError, convert_model
from onnx import helper


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


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
