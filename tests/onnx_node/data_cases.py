"""ONNX's stored model cases (``pytorch-converted``, ``pytorch-operator``) through converter + runtime.

Each case is a folder with ``model.onnx`` and ``test_data_set_0/{input,output}_*.pb``
(found with ``tests/onnx_test_data.py``). Most were exported at opset 6, which the
converter refuses (it needs opset 7+); the harness, and only the harness, upgrades those
with ``onnx.version_converter`` to opset ``UPGRADE_TO`` first, so that their content
(grouped/depthwise convs among others) gets tested. The upgrade only rewrites op
versions (e.g. drops BatchNormalization's ``consumed_inputs``); the stored outputs stay
the oracle.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, version_converter

_HERE = Path(__file__).resolve().parent
for _path in (_HERE.parents[1] / "runtime", _HERE.parents[1] / "tools" / "converter", _HERE, _HERE.parent):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from exclusions import DATA_CASE_EXCLUDED, exclusion_reason  # noqa: E402
from harness import ATOL_FLOOR, PARAMETER_INPUTS  # noqa: E402
from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.testing import device_under_test, plan_kind_under_test  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402
from mace_cl_converter.supported_ops import runtime_ops  # noqa: E402
from onnx_test_data import data_dir  # noqa: E402

KINDS = ("pytorch-converted", "pytorch-operator")
UPGRADE_TO = 7  # the lowest opset the converter accepts: the smallest rewrite of the stored model
# ONNX's backend test runner compares these folders with rtol 1e-3, atol 1e-7; the atol is
# below float32 resolution for O(1) values, so the node harness's floor applies.
RTOL = 1e-3


@dataclass(frozen=True)
class DataCase:
    kind: str
    name: str
    folder: Path

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"


def _read_tensors(folder: Path, prefix: str) -> list[np.ndarray]:
    files = sorted(folder.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
    tensors = []
    for path in files:
        proto = onnx.TensorProto()
        proto.ParseFromString(path.read_bytes())
        tensors.append(numpy_helper.to_array(proto))
    return tensors


@cache
def data_cases() -> tuple[DataCase, ...]:
    """Every case folder of KINDS that is present (empty when ONNX's data is absent)."""
    cases = []
    for kind in KINDS:
        root = data_dir(kind)
        if root is None:
            continue
        cases.extend(
            DataCase(kind, folder.name, folder)
            for folder in sorted(root.iterdir())
            if (folder / "model.onnx").is_file()
        )
    return tuple(cases)


@cache
def load_case(case: DataCase) -> tuple[onnx.ModelProto, list[np.ndarray], list[np.ndarray], int]:
    """(model upgraded to opset >= 7, inputs, expected outputs, original opset)."""
    model = onnx.load(str(case.folder / "model.onnx"))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < UPGRADE_TO:
        model = version_converter.convert_version(model, UPGRADE_TO)
        _per_channel_prelu_slopes(model)
    data = case.folder / "test_data_set_0"
    return model, _read_tensors(data, "input"), _read_tensors(data, "output"), opset


def _per_channel_prelu_slopes(model: onnx.ModelProto) -> None:
    """PRelu-6 applies a 1-D slope [C] per channel (axis 1); from opset 7 the slope
    broadcasts numpy-style (from the last axis), so [C] must become [C, 1, ...]. The
    version converter leaves the slope alone, which makes the upgraded model invalid
    (slope [3] against X [2, 3, 4, 5]); this finishes that upgrade."""
    ranks = {info.name: len(info.type.tensor_type.shape.dim) for info in model.graph.input}
    initializers = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "PRelu" or node.input[1] not in initializers:
            continue
        slope = numpy_helper.to_array(initializers[node.input[1]])
        rank = ranks.get(node.input[0], 0)
        if slope.ndim == 1 and slope.size > 1 and rank > 2:
            initializers[node.input[1]].CopyFrom(
                numpy_helper.from_array(slope.reshape(-1, *([1] * (rank - 2))), node.input[1])
            )
            for info in model.graph.input:  # IR 3: the initializer is listed as an input too
                if info.name == node.input[1]:
                    info.CopyFrom(
                        onnx.helper.make_tensor_value_info(
                            info.name, info.type.tensor_type.elem_type, [slope.size] + [1] * (rank - 2)
                        )
                    )


def _unsupported_ops(model: onnx.ModelProto) -> list[str]:
    return sorted({node.op_type for node in model.graph.node} - set(runtime_ops()))


def excluded(case: DataCase) -> str | None:
    if case.id in DATA_CASE_EXCLUDED:
        return DATA_CASE_EXCLUDED[case.id]
    model, inputs, outputs, _ = load_case(case)
    reason = exclusion_reason(case.name, model, inputs, outputs)
    if reason is None and _unsupported_ops(model):
        # Like the node harness, which runs cases of supported ops only.
        reason = "uses ops the runtime has no kernel for: " + ", ".join(_unsupported_ops(model))
    return reason


def prepare(case: DataCase) -> tuple[onnx.ModelProto, dict[str, np.ndarray], list[np.ndarray]]:
    """The upgraded model with parameter inputs (weights, non-float inputs) turned into
    initializers, the run-time feeds, and the expected outputs."""
    source, inputs, outputs, _ = load_case(case)
    model = onnx.ModelProto()
    model.CopyFrom(source)
    graph = model.graph
    initialized = {init.name for init in graph.initializer}
    feed_infos = [info for info in graph.input if info.name not in initialized]
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in graph.node:
        for position, name in enumerate(node.input):
            uses.setdefault(name, []).append((node.op_type, position))
    feeds: dict[str, np.ndarray] = {}
    for info, value in zip(feed_infos, inputs, strict=True):
        is_parameter = any(
            position in PARAMETER_INPUTS.get(op, ()) for op, position in uses.get(info.name, [])
        )
        if is_parameter or value.dtype != np.float32:
            graph.initializer.append(numpy_helper.from_array(value, info.name))
        else:
            feeds[info.name] = value
    # IR 3 lists initializers as inputs too; the converter treats those as weights.
    if model.ir_version >= 4:
        keep = [info for info in graph.input if info.name in feeds]
        del graph.input[:]
        graph.input.extend(keep)
    return model, feeds, outputs


def run_data_case(case: DataCase) -> None:
    model, feeds, expected_outputs = prepare(case)
    shapes = {name: tuple(value.shape) for name, value in feeds.items()}
    graph = convert_model(model, shapes, where=case.id)
    results = MaceRuntime(graph, device=device_under_test(), plan_kind=plan_kind_under_test()).run_dict(feeds)
    for info, expected in zip(model.graph.output, expected_outputs, strict=True):
        actual = results[info.name]
        assert actual.shape == expected.shape, f"{info.name}: shape {actual.shape}, expected {expected.shape}"
        np.testing.assert_allclose(
            actual, expected, rtol=RTOL, atol=ATOL_FLOOR, err_msg=f"{case.id} output {info.name}"
        )
