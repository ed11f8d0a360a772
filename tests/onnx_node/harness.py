"""Run ONNX's own node conformance cases through converter + runtime.

Cases come from ``onnx.backend.test.case.node.collect_testcases()``, which builds each
single-node model and its expected outputs in memory (no data folders needed). A case is
in scope when its node's op is one the converter accepts on run-time tensors.

Inputs that are weights or shape parameters in real models (``PARAMETER_INPUTS``, and
every non-float input) become initializers, because the runtime plans shapes and
packs weights before it runs; the data input stays a run-time input.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

_REPO = Path(__file__).resolve().parents[2]
for _path in (_REPO / "runtime", _REPO / "tools" / "converter", Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from exclusions import exclusion_reason  # noqa: E402
from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.testing import (  # noqa: E402
    assert_close_half,
    device_under_test,
    half_rounded,
    plan_kind_under_test,
)
from mace_cl_converter import convert_model  # noqa: E402
from mace_cl_converter.supported_ops import runtime_ops  # noqa: E402

# Op -> input positions that are weights/parameters (constants) in real models.
PARAMETER_INPUTS: dict[str, frozenset[int]] = {
    "Conv": frozenset({1, 2}),
    "ConvTranspose": frozenset({1, 2}),
    "BatchNormalization": frozenset({1, 2, 3, 4}),
    "Gemm": frozenset({1, 2}),
    "MatMul": frozenset({1}),
    "PRelu": frozenset({1}),
    "Clip": frozenset({1, 2}),
    "Pad": frozenset({1, 2, 3}),
    "Resize": frozenset({1, 2, 3}),
    "Upsample": frozenset({1}),
}

# Tolerances: ONNX's stored rtol (1e-3 by default) with an absolute floor of 1e-5, because
# the stored atol (1e-7) is below float32 resolution for values near 1 and OpenCL's
# exp/tanh/division may differ from numpy by a few ulp.
ATOL_FLOOR = 1e-5


@dataclass
class NodeCase:
    name: str
    model: onnx.ModelProto
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    rtol: float
    atol: float

    @property
    def op_type(self) -> str:
        return self.model.graph.node[0].op_type


@cache
def all_cases() -> tuple[NodeCase, ...]:
    """Every single-node case of a supported op with its first data set."""
    import contextlib
    import io

    from onnx.backend.test.case import node as node_cases

    supported = set(runtime_ops())
    with contextlib.redirect_stderr(io.StringIO()), np.errstate(all="ignore"):
        collected = (
            node_cases.collect_testcases(None)
            if _takes_arg(node_cases.collect_testcases)
            else node_cases.collect_testcases()
        )
    cases = []
    for case in collected:
        model = case.model
        if model is None or len(model.graph.node) != 1 or model.graph.node[0].op_type not in supported:
            continue
        if model.graph.node[0].domain not in ("", "ai.onnx"):
            continue
        inputs, outputs = case.data_sets[0]
        cases.append(
            NodeCase(
                case.name,
                model,
                [np.asarray(a) for a in inputs],
                [np.asarray(a) for a in outputs],
                case.rtol,
                case.atol,
            )
        )
    return tuple(sorted(cases, key=lambda c: c.name))


def _takes_arg(fn) -> bool:
    return fn.__code__.co_argcount > 0


def excluded(case: NodeCase) -> str | None:
    return exclusion_reason(case.name, case.model, case.inputs, case.outputs)


def prepare(case: NodeCase) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The case's model with parameters as initializers, and the run-time feeds."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    node = graph.node[0]
    params = PARAMETER_INPUTS.get(node.op_type, frozenset())
    feeds: dict[str, np.ndarray] = {}
    keep = []
    for info, value in zip(graph.input, case.inputs, strict=True):
        position = list(node.input).index(info.name)
        if position in params or value.dtype != np.float32:
            graph.initializer.append(numpy_helper.from_array(value, info.name))
        else:
            keep.append(info)
            feeds[info.name] = value
    del graph.input[:]
    graph.input.extend(keep)
    return model, feeds


def run_case(case: NodeCase) -> None:
    """Convert, run, compare; raises AssertionError (or the converter's error) on failure."""
    model, feeds = prepare(case)
    shapes = {name: tuple(value.shape) for name, value in feeds.items()}
    graph = convert_model(model, shapes, where=case.name)
    results = MaceRuntime(graph, device=device_under_test(), plan_kind=plan_kind_under_test()).run_dict(feeds)
    for info, expected in zip(model.graph.output, case.outputs, strict=True):
        actual = results[info.name]
        assert actual.shape == expected.shape, f"{info.name}: shape {actual.shape}, expected {expected.shape}"
        np.testing.assert_allclose(
            actual,
            expected,
            rtol=case.rtol,
            atol=max(case.atol, ATOL_FLOOR),
            err_msg=f"{case.name} output {info.name}",
        )


# Half-storage runs: the most values any in-scope single-node case stores in half on the way
# from its inputs to an output (its output, plus intermediate tensors of ops the converter
# lowers into several nodes or that launch several kernels).
HALF_ROUNDINGS = 3


def half_exact(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray]
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The model and feeds with every float32 value rounded to what half holds exactly."""
    rounded = onnx.ModelProto()
    rounded.CopyFrom(model)
    for index, init in enumerate(rounded.graph.initializer):
        value = numpy_helper.to_array(init)
        if value.dtype == np.float32:
            rounded.graph.initializer[index].CopyFrom(numpy_helper.from_array(half_rounded(value), init.name))
    return rounded, {name: half_rounded(value) for name, value in feeds.items()}


def run_case_half(case: NodeCase) -> None:
    """The case in data_type fp16_fp32, against ONNX's reference evaluator on half-exact inputs.

    ONNX's stored outputs come from float32 inputs; half storage rounds inputs and weights
    first, so the oracle is recomputed (onnx.reference, numpy) from the rounded values. What
    remains is the device's own rounding of outputs and intermediates (HALF_ROUNDINGS)."""
    from onnx.reference import ReferenceEvaluator

    model, feeds = half_exact(*prepare(case))
    shapes = {name: tuple(value.shape) for name, value in feeds.items()}
    graph = convert_model(model, shapes, where=case.name, data_type="fp16_fp32")
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind=plan_kind_under_test())
    results = runtime.run_dict(feeds)
    expected = ReferenceEvaluator(model).run(None, feeds)
    for info, reference in zip(model.graph.output, expected, strict=True):
        actual = results[info.name]
        assert actual.shape == reference.shape, (
            f"{info.name}: shape {actual.shape}, expected {reference.shape}"
        )
        assert_close_half(actual, reference, roundings=HALF_ROUNDINGS)
