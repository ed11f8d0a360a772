"""passes/swish.py: x * Sigmoid(x) becomes Swish, which then fuses into the Conv before it."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make, ort, run
from onnx import helper


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


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
