"""Chrome traces and JSON of run profiles: a real profiled run on the CPU OpenCL device (PoCL),
and hand-made profiles whose event times are known exactly."""

from __future__ import annotations

import json
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
REPO = Path(__file__).absolute().parents[2]
sys.path[:0] = [str(REPO / "runtime")]

from mace_cl import Graph, MaceRuntime, Node, TensorInfo  # noqa: E402
from mace_cl.chrome_trace import chrome_trace, profile_to_json, write_chrome_trace  # noqa: E402
from mace_cl.execution.engine import LaunchProfile, RunProfile  # noqa: E402
from mace_cl.testing import device_under_test  # noqa: E402

SHAPE = (1, 4, 6, 6)
# Every launch of a run: input conversion, one per node, output conversion.
NODES = ["<input>", "scale", "relu", "residual", "<output>"]


def _graph() -> Graph:
    return Graph(
        inputs=[TensorInfo("x", SHAPE)],
        outputs=[TensorInfo("y", SHAPE)],
        nodes=[
            Node("Mul", "scale", ["x", "w"], ["t"]),
            Node("Relu", "relu", ["t"], ["r"]),
            Node("Add", "residual", ["r", "x"], ["y"]),
        ],
        constants={"w": np.linspace(-1, 1, 4, dtype=np.float32).reshape(1, 4, 1, 1)},
    )


@pytest.fixture(scope="module")
def runtime() -> MaceRuntime:
    runtime = MaceRuntime(_graph(), device=device_under_test(), profile=True)
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    for _ in range(2):  # the last run's profile is the one read
        runtime.run_dict({"x": x})
    return runtime


def _complete_events(trace: dict) -> list[dict]:
    return [event for event in trace["traceEvents"] if event["ph"] == "X"]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def test_written_trace_is_json_with_one_event_per_launch(runtime: MaceRuntime, tmp_path: Path) -> None:
    profile = runtime.last_profile()
    path = tmp_path / "trace.json"
    write_chrome_trace(profile, path, runtime.device.name.strip())
    trace = json.loads(path.read_text(encoding="utf-8"))
    assert trace["displayTimeUnit"] == "ms"
    events = _complete_events(trace)
    assert [event["args"]["node"] for event in events] == NODES
    assert len(events) == len(profile.launches)
    for event, launch in zip(events, profile.launches, strict=True):
        assert _is_number(event["ts"]) and _is_number(event["dur"]), event
        assert event["ts"] >= 0 and event["dur"] >= 0, event
        assert event["name"] == f"{launch.op_type}/{launch.kernel}"
        assert event["cat"] == launch.op_type
        assert event["args"]["kernel"] == launch.kernel
        assert event["args"]["global_size"] == list(launch.global_size)
        # The program key: the kernel's source file and build options, as the planner names it.
        assert event["args"]["program"] == launch.program and launch.program.split()[0] in (
            "eltwise",
            "activation",
            "layout",
        ), launch.program
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
    assert [event["name"] for event in events[1:4]] == ["Mul/eltwise", "Relu/activation", "Add/eltwise"]


def test_durations_add_up_to_the_device_time(runtime: MaceRuntime) -> None:
    profile = runtime.last_profile()
    total_us = sum(event["dur"] for event in _complete_events(chrome_trace(profile)))
    assert profile.device_seconds > 0
    assert total_us == pytest.approx(profile.device_seconds * 1e6, rel=0.01)


def test_launches_of_the_in_order_queue_do_not_overlap(runtime: MaceRuntime) -> None:
    events = _complete_events(chrome_trace(runtime.last_profile()))
    assert events[0]["ts"] == 0  # times count from the run's first launch
    for before, after in pairwise(events):
        assert before["ts"] + before["dur"] <= after["ts"], (before, after)


def test_metadata_names_the_device_and_the_queue(runtime: MaceRuntime) -> None:
    name = runtime.device.name.strip()
    metadata = {
        event["name"]: event
        for event in chrome_trace(runtime.last_profile(), name)["traceEvents"]
        if event["ph"] == "M"
    }
    assert metadata["process_name"]["args"]["name"] == name
    assert "queue" in metadata["thread_name"]["args"]["name"]
    x_event = _complete_events(chrome_trace(runtime.last_profile(), name))[0]
    assert (metadata["thread_name"]["pid"], metadata["thread_name"]["tid"]) == (
        x_event["pid"],
        x_event["tid"],
    )


def test_profile_json_round_trips(runtime: MaceRuntime) -> None:
    profile = runtime.last_profile()
    data = json.loads(json.dumps(profile_to_json(profile)))
    assert [launch["node"] for launch in data["launches"]] == NODES
    assert data["device_seconds"] == pytest.approx(
        sum(launch["device_seconds"] for launch in data["launches"])
    )
    assert data["wall_seconds"] >= data["device_seconds"]  # the host waited for every launch
    assert data["launches"][0]["local_size"] is None or isinstance(data["launches"][0]["local_size"], list)


def _launch(node: str, start_ms: float, device_ms: float) -> LaunchProfile:
    return LaunchProfile(
        node,
        "Conv",
        "conv2d",
        "conv2d -DACTIVATION=ACT_NONE",
        (4, 8, 1),
        (1, 1, 1),
        device_ms * 1e-3,
        start_ms * 1e-3,
    )


def test_times_are_microseconds_from_the_profile() -> None:
    profile = RunProfile(
        (_launch("a", 0.0, 0.25), _launch("b", 1.5, 2.0)), host_enqueue_seconds=1e-4, wall_seconds=5e-3
    )
    trace = chrome_trace(profile, "test device")
    events = _complete_events(trace)
    assert [(event["ts"], event["dur"]) for event in events] == [(0.0, 250.0), (1500.0, 2000.0)]
    assert events[1]["args"]["local_size"] == [1, 1, 1]
    # Nothing ran from 0.25 ms (a's end) to 1.5 ms (b's start).
    assert trace["otherData"]["idle_ms"] == pytest.approx(1.25)
    assert trace["otherData"]["device_ms"] == pytest.approx(2.25)


def test_an_empty_profile_is_a_valid_trace() -> None:
    trace = json.loads(json.dumps(chrome_trace(RunProfile((), 0.0, 0.0))))
    assert _complete_events(trace) == []
    assert {event["name"] for event in trace["traceEvents"]} == {"process_name", "thread_name"}


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
