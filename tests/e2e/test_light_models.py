"""End-to-end: ONNX's nine light/ model-zoo graphs with seeded random weights vs onnxruntime.

The stored weights are ConstantOfShape(0.02) fills (uniform outputs that only prove the
graph runs), so each ConstantOfShape becomes a random initializer of its shape:
He-scaled normal weights, BN scale/variance in [0.5, 1.5], small biases.

Tolerance: worst |ours - ort| / max |ort| <= 1e-3. These are 8..121-conv deep float32
nets on 1x3x224x224 inputs; summation order differs (blocked kernels vs ORT's GEMM) and
BN is folded into the weights, so relative error grows with depth to ~1e-5; softmax
outputs near 0 are compared against the largest output, so 1e-3 still catches any real
bug (a wrong index or op gives errors of order 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

sys.path.append(str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[1]))

from e2e_util import RESULTS, check_model
from onnx_test_data import data_dir

TOLERANCE = 1e-3
MODELS = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)


def randomise_weights(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """Replace every ConstantOfShape (weights) by a seeded random initializer."""
    rng = np.random.default_rng(seed)
    graph = model.graph
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    uses: dict[str, tuple[str, int]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            uses.setdefault(name, (node.op_type, index))
    kept = []
    for node in graph.node:
        if node.op_type != "ConstantOfShape":
            kept.append(node)
            continue
        shape = tuple(int(d) for d in values[node.input[0]])
        op, index = uses.get(node.output[0], ("", 0))
        if (op == "BatchNormalization" and index in (1, 4)) or op == "Mul":
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        else:
            value = rng.standard_normal(shape) * 0.1
        graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
        if model.ir_version < 4:  # IR 3 requires every initializer to be a graph input too
            graph.input.append(helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, shape))
    # Compare logits, not probabilities: with random weights the final Softmax saturates
    # to one-hot vectors, which would hide errors.
    last = kept[-1]
    if last.op_type == "Softmax" and last.output[0] == graph.output[0].name:
        kept.pop()
        graph.output[0].name = last.input[0]
    del graph.node[:]
    graph.node.extend(kept)
    return model


@pytest.fixture(scope="module")
def light_dir() -> Path:
    found = data_dir("light")
    assert found is not None, (
        "ONNX's light/ models were not found; run 'python3 tests/onnx_test_data.py --fetch' "
        "or set MACE_ONNX_TEST_DATA (see tests/onnx_test_data.py)"
    )
    return found


@pytest.mark.parametrize("name", MODELS)
def test_light_model(light_dir: Path, name: str) -> None:
    model = randomise_weights(onnx.load(str(light_dir / f"light_{name}.onnx")), seed=len(name))
    data_input = next(i for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer})
    dims = tuple(d.dim_value for d in data_input.type.tensor_type.shape.dim)
    feed = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
    check_model(name, model, {data_input.name: feed}, TOLERANCE)


if __name__ == "__main__":
    code = pytest.main([__file__, "-q", "-s"])
    print(RESULTS)
    raise SystemExit(code)
