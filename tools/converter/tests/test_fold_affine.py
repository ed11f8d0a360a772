"""passes/fold_affine.py: batch norm folds into the Conv before it; a standalone one stays Mul + Add."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import conv_bn_relu_model, f32, make, ort, run
from onnx import helper


def test_batchnorm_and_relu_fold_into_conv() -> None:
    # The Relu then fuses too (passes/fuse_activation.py).
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


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
