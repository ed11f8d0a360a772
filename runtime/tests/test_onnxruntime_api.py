"""Code written for onnxruntime's InferenceSession works on MaceRuntime: the same calls give
the same metadata and, within float32 tolerance, the same arrays in the same order.

onnxruntime itself is the oracle, on a converted two-output model.
"""

from __future__ import annotations

import threading

import numpy as np
import onnx
import onnxruntime
import pytest
from mace_cl import MaceRuntime, NodeArg
from mace_cl.execution.engine import InputError
from mace_cl_converter import convert_model
from onnx import TensorProto, helper, numpy_helper

SHAPE = [1, 3, 5, 5]
TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    weight = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["conv"], ["relu"]),
            helper.make_node("Sigmoid", ["conv"], ["gate"]),
        ],
        "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [
            helper.make_tensor_value_info("relu", TensorProto.FLOAT, [1, 4, 5, 5]),
            helper.make_tensor_value_info("gate", TensorProto.FLOAT, [1, 4, 5, 5]),
        ],
        [numpy_helper.from_array(weight, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


@pytest.fixture(scope="module")
def sessions(model: onnx.ModelProto) -> tuple[MaceRuntime, onnxruntime.InferenceSession]:
    ours = MaceRuntime(convert_model(model, {"x": tuple(SHAPE)}))
    theirs = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return ours, theirs


def _described(args: list) -> list[tuple[str, list, str]]:
    return [(arg.name, list(arg.shape), arg.type) for arg in args]


def test_inputs_and_outputs_are_described_as_onnxruntime_does(sessions) -> None:
    ours, theirs = sessions
    assert _described(ours.get_inputs()) == _described(theirs.get_inputs())
    assert _described(ours.get_outputs()) == _described(theirs.get_outputs())
    assert all(isinstance(arg, NodeArg) for arg in ours.get_inputs())


@pytest.mark.parametrize("output_names", [None, ["gate"], ["gate", "relu"], ["relu", "relu"]])
def test_run_returns_the_requested_outputs_in_order(sessions, output_names) -> None:
    ours, theirs = sessions
    x = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    got = ours.run(output_names, {"x": x})
    expected = theirs.run(output_names, {"x": x})
    assert isinstance(got, list) and len(got) == len(expected)
    for actual, reference in zip(got, expected, strict=True):
        np.testing.assert_allclose(actual, reference, **TOL)


def test_run_dict_gives_every_output_by_name(sessions) -> None:
    ours, theirs = sessions
    x = np.random.default_rng(2).standard_normal(SHAPE).astype(np.float32)
    got = ours.run_dict({"x": x})
    assert list(got) == ["relu", "gate"]
    for name, reference in zip(["relu", "gate"], theirs.run(None, {"x": x}), strict=True):
        np.testing.assert_allclose(got[name], reference, **TOL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (({"x": None},), r"run\(\) takes \(output_names, input_feed\).*run_dict"),
        (({"x": None}, None), r"run\(\) takes \(output_names, input_feed\)"),
        (("relu", {}), r"output_names must be a list of names, e.g. \['relu'\]"),
        ((["relu", "nope"], {}), r"unknown output\(s\) 'nope'; the model's outputs are \['relu', 'gate'\]"),
    ],
)
def test_misuse_of_run_is_named(sessions, args, message) -> None:
    ours, _ = sessions
    with pytest.raises((InputError, TypeError), match=message):
        ours.run(*args)


def test_threads_sharing_one_runtime_each_get_their_own_answer(sessions) -> None:
    ours, theirs = sessions
    wrong: list[int] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(20):
            x = rng.standard_normal(SHAPE).astype(np.float32)
            (gate,) = ours.run(["gate"], {"x": x})
            if not np.allclose(gate, theirs.run(["gate"], {"x": x})[0], **TOL):
                wrong.append(seed)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
