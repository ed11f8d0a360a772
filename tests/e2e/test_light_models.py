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

sys.path.append(str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[1]))

from e2e_util import RESULTS, check_model, randomise_weights
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
