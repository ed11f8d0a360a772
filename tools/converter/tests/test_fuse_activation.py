"""passes/fuse_activation.py: an activation after a Conv/Gemm/eltwise becomes the producer's
fused activation (with its parameters), after fold_affine has folded the bias Add."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make, ort, run
from onnx import helper


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


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
