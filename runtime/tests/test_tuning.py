"""Tuned local sizes: never a different output; used only on the device they were tuned on,
only where it accepts them; a damaged tuning section costs the tuning, nothing else."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mace_cl import MaceRuntime
from mace_cl.execution.device import device_identity, select_device
from mace_cl.execution.local_sizes import LocalSizeLimits, candidate_local_sizes, fits, launch_limits
from mace_cl.execution.tuner import default_feeds, tune
from mace_cl.model.container import pack_container, unpack_container
from mace_cl.model.graph import Graph
from mace_cl.model.program_file import (
    PROGRAMS_FORMAT_VERSION,
    PROGRAMS_MAGIC,
    CompiledProgramSet,
    DeviceIdentity,
    encode_compiled_programs,
)
from mace_cl.model.tuning_file import TuningTable
from mace_cl.planning.planner import PLAN_KINDS
from mace_cl.testing import device_under_test
from mace_cl_converter import convert_model
from onnx import TensorProto, helper, numpy_helper


def _onnx_model() -> onnx.ModelProto:
    """3x3 conv -> relu -> depthwise 3x3 -> add (skip) -> max pool -> 1x1 conv -> global pool."""
    rng = np.random.default_rng(3)

    def weight(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.uniform(-0.5, 0.5, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=12),
        helper.make_node("Add", ["c2", "r1"], ["a"]),
        helper.make_node("MaxPool", ["a"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["m", "w3"], ["c3"]),
        helper.make_node("GlobalAveragePool", ["c3"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tuning",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 20, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 20, 1, 1])],
        [
            weight("w1", (12, 5, 3, 3)),
            weight("b1", (12,)),
            weight("w2", (12, 1, 3, 3)),
            weight("w3", (20, 12, 1, 1)),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def model() -> tuple[Graph, dict[str, np.ndarray], np.ndarray]:
    proto = _onnx_model()
    graph = convert_model(proto, {}, where="tuning")
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (1, 5, 20, 28)).astype(np.float32)
    (expected,) = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    return graph, {"x": x}, expected


def _table(runtime: MaceRuntime, pick: int, identity: DeviceIdentity | None = None) -> TuningTable:
    """A local size for every tunable instance: the ``pick``-th candidate (wrapping)."""
    table = TuningTable()
    for launch in runtime.tunable_launches():
        limits = launch_limits(runtime.device, [launch.kernel])
        candidates = candidate_local_sizes(launch.instance.global_size, limits)
        table.set(
            identity or device_identity(runtime.device), launch.instance, candidates[pick % len(candidates)]
        )
    return table


@pytest.mark.parametrize("kind", PLAN_KINDS)
@pytest.mark.parametrize("pick", [0, 1, -1])
def test_tuned_local_sizes_never_change_outputs(model, kind: str, pick: int) -> None:
    graph, feeds, expected = model
    plain = MaceRuntime(graph, device=device_under_test(), plan_kind=kind)
    assert plain.tunable_launches(), "the model must have tunable launches"
    tuned = MaceRuntime(graph, device=device_under_test(), plan_kind=kind, tuning=_table(plain, pick))
    assert tuned.tuned_launch_count == len(plain.tunable_launches())
    baseline = plain.run_dict(feeds)["y"]
    result = tuned.run_dict(feeds)["y"]
    np.testing.assert_allclose(result, baseline, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-5)


def test_another_device_identity_gets_the_defaults(model) -> None:
    graph, feeds, _ = model
    plain = MaceRuntime(graph, device=device_under_test())
    actual = device_identity(plain.device)
    other = DeviceIdentity(
        actual.platform_name,
        actual.platform_version,
        actual.device_name,
        actual.device_version,
        "another driver",
    )
    tuned = MaceRuntime(graph, device=device_under_test(), tuning=_table(plain, 0, identity=other))
    assert tuned.tuned_launch_count == 0
    assert [launch.local_size for launch in tuned.tunable_launches()] == [
        launch.local_size for launch in plain.tunable_launches()
    ]
    np.testing.assert_array_equal(tuned.run_dict(feeds)["y"], plain.run_dict(feeds)["y"])


def test_sizes_the_device_cannot_take_are_ignored(model, caplog: pytest.LogCaptureFixture) -> None:
    graph, feeds, _ = model
    plain = MaceRuntime(graph, device=device_under_test())
    identity = device_identity(plain.device)
    table = TuningTable()
    for launch in plain.tunable_launches():
        size = launch.instance.global_size
        # Not a divisor of the global size: enqueueing it could skip or repeat work-items.
        table.set(identity, launch.instance, (size[0] + 1, *size[1:]))
    with caplog.at_level(logging.WARNING, logger="mace_cl"):
        tuned = MaceRuntime(graph, device=device_under_test(), tuning=table)
    assert tuned.tuned_launch_count == 0
    assert "does not divide global size" in caplog.text
    np.testing.assert_array_equal(tuned.run_dict(feeds)["y"], plain.run_dict(feeds)["y"])


def _shipped(table: TuningTable, edit_tuning: object = None) -> bytes:
    programs = CompiledProgramSet(tuning=table)
    data = encode_compiled_programs(programs)
    if edit_tuning is None:
        return data
    container = unpack_container(data, PROGRAMS_MAGIC, PROGRAMS_FORMAT_VERSION, "test", "test")
    header = json.loads(json.dumps(container.header))
    header["tuning"] = edit_tuning
    packed, _ = pack_container(PROGRAMS_MAGIC, PROGRAMS_FORMAT_VERSION, header, [])
    return packed


def test_tuning_in_the_compiled_program_file_is_used(model, tmp_path: Path) -> None:
    graph, feeds, _ = model
    plain = MaceRuntime(graph, device=device_under_test())
    path = tmp_path / "mace_cl_compiled_program.bin"
    path.write_bytes(_shipped(_table(plain, 1)))
    tuned = MaceRuntime(graph, device=device_under_test(), compiled_program=path)
    assert tuned.tuned_launch_count == len(plain.tunable_launches())
    np.testing.assert_allclose(tuned.run_dict(feeds)["y"], plain.run_dict(feeds)["y"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("damage", ["section", "bytes"])
def test_a_damaged_tuning_section_falls_back(model, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    graph, feeds, _ = model
    plain = MaceRuntime(graph, device=device_under_test())
    table = _table(plain, 1)
    if damage == "section":  # checksums intact, the section malformed (a writer's bug)
        data = _shipped(table, edit_tuning=[{"identity": "?", "launches": [{"local_size": [0]}]}])
    else:  # a flipped bit in the tuning text: the whole file is refused
        data = bytearray(_shipped(table))
        data[bytes(data).index(b'"local_size"') + 3] ^= 0x01
        data = bytes(data)
    with caplog.at_level(logging.WARNING, logger="mace_cl"):
        tuned = MaceRuntime(graph, device=device_under_test(), compiled_program=data)
    assert tuned.tuned_launch_count == 0
    assert "tuned local sizes" in caplog.text or "checksum" in caplog.text
    np.testing.assert_array_equal(tuned.run_dict(feeds)["y"], plain.run_dict(feeds)["y"])


def test_tuner_times_candidates_and_keeps_outputs(model) -> None:
    graph, feeds, expected = model
    runtime = MaceRuntime(graph, device=device_under_test())
    # min_gain -1: keep the fastest candidate even when slower than the default, so the
    # sizes it found are certainly used below. Few candidates: PoCL compiles per local size.
    result = tune(runtime, max_candidates=2, repeats=1, min_gain=-1.0)
    instances = {launch.instance for launch in runtime.tunable_launches()}
    assert {item.instance for item in result.instances} == instances
    stored = result.table.for_device(device_identity(runtime.device))
    assert set(stored) <= instances and stored
    for item in result.instances:
        assert item.candidates <= 2
        if item.tuned_local is not None:
            assert stored[item.instance] == item.tuned_local
            assert math.isfinite(item.tuned_seconds) and item.tuned_seconds > 0
    tuned = MaceRuntime(graph, device=device_under_test(), tuning=result.table)
    assert tuned.tuned_launch_count > 0
    np.testing.assert_allclose(tuned.run_dict(feeds)["y"], expected, rtol=1e-4, atol=1e-5)
    assert set(default_feeds(runtime)) == {"x"}


def test_candidates_fit_the_limits_and_spread() -> None:
    limits = LocalSizeLimits(max_item_sizes=(1024, 1024, 64), max_group_items=1024)
    candidates = candidate_local_sizes((64, 56, 112), limits, max_count=30)
    assert len(candidates) == 30 == len(set(candidates))
    assert all(fits(local, (64, 56, 112), limits) is None for local in candidates)
    assert all(local[2] <= 64 for local in candidates)  # NVIDIA's third dimension
    sizes = {math.prod(local) for local in candidates}
    assert min(sizes) == 1 and max(sizes) > 512  # from single items to full groups
    assert candidate_local_sizes((64, 56, 112), limits) == candidates  # deterministic
    assert fits((3, 1), (8, 8), limits) == "local size [3, 1] does not divide global size [8, 8]"
    assert "work-items allowed" in (fits((32, 32, 2), (64, 64, 2), limits) or "")
    assert "over the device's 64" in (fits((1, 1, 128), (1, 1, 128), limits) or "")
    assert "rank" in (fits((1, 1), (1, 1, 1), limits) or "")
    select_device(device_under_test())  # the device these tests run on exists


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
