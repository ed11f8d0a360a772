"""Shared helpers for the end-to-end tests: convert with the converter, run with the
runtime, compare with onnxruntime (the oracle), report the worst relative error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_REPO = Path(__file__).resolve().parents[2]
for _path in (_REPO / "runtime", _REPO / "tools" / "converter"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.testing import device_under_test, plan_kind_under_test  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402

# Worst relative error of each model run in this process (printed by the scripts).
RESULTS: dict[str, float] = {}


def oracle(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime's outputs (CPU provider, graph optimisations off: plain op semantics)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected|: error relative to the output's magnitude
    (element-wise relative error is meaningless for outputs near zero)."""
    scale = float(np.max(np.abs(expected))) or 1.0
    return float(np.max(np.abs(actual.astype(np.float64) - expected))) / scale


def check_model(
    name: str,
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    tolerance: float,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
) -> float:
    """Convert + run ``model`` and compare every output with onnxruntime; returns the worst error."""
    graph = convert_model(model, input_shapes or {k: v.shape for k, v in feeds.items()}, where=name)
    ours = MaceRuntime(graph, device=device_under_test(), plan_kind=plan_kind_under_test()).run_dict(feeds)
    expected = oracle(model, feeds)
    worst = 0.0
    for out_name, reference in expected.items():
        actual = ours[out_name]
        assert actual.shape == reference.shape, (
            f"{name}/{out_name}: shape {actual.shape} != {reference.shape}"
        )
        worst = max(worst, relative_error(actual, reference))
    RESULTS[name] = worst
    print(f"{name}: worst relative error {worst:.3g} (tolerance {tolerance:g})")
    assert worst <= tolerance, f"{name}: worst relative error {worst:.3g} exceeds {tolerance:g}"
    return worst


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
