"""Run profiles as JSON: plain data, and Chrome Trace Event Format for chrome://tracing or Perfetto.

``chrome_trace`` gives the JSON Object Format (``{"traceEvents": [...], "displayTimeUnit": "ms"}``):
one complete event (``"ph": "X"``) per kernel launch, on one track, since a runtime enqueues
everything on one in-order queue. ``ts`` is the launch's OpenCL START relative to the START of
the run's first launch and ``dur`` its START..END, both in microseconds (the format's unit), so
gaps between slices are real device idle time. Host-side numbers (enqueue time, ``run`` wall
time) use another clock; they go to ``otherData``, not onto the device track.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mace_cl.execution.engine import LaunchProfile, RunProfile
from mace_cl.model.container import write_atomically

PROCESS_ID = 1
QUEUE_THREAD_ID = 1


def launch_to_json(launch: LaunchProfile) -> dict[str, Any]:
    return {
        "node": launch.node,
        "op_type": launch.op_type,
        "kernel": launch.kernel,
        "program": launch.program,
        "global_size": list(launch.global_size),
        "local_size": None if launch.local_size is None else list(launch.local_size),
        "device_seconds": launch.device_seconds,
        "start_seconds": launch.start_seconds,
    }


def profile_to_json(profile: RunProfile) -> dict[str, Any]:
    """The profile as JSON-serialisable data (the derived totals included, for readers in other languages)."""
    return {
        "launches": [launch_to_json(launch) for launch in profile.launches],
        "host_enqueue_seconds": profile.host_enqueue_seconds,
        "wall_seconds": profile.wall_seconds,
        "device_seconds": profile.device_seconds,
        "idle_seconds": profile.idle_seconds,
    }


def launch_name(launch: LaunchProfile) -> str:
    """ "op type/kernel", e.g. "Conv/conv2d_o16": trace viewers and tables group by this name."""
    return f"{launch.op_type}/{launch.kernel}"


def _microseconds(seconds: float) -> float:
    # Profiles come from nanosecond counters: rounding to 1 ns drops float noise that would
    # otherwise make back-to-back slices overlap by a hair (viewers then nest them).
    return round(seconds * 1e6, 3)


def chrome_trace(profile: RunProfile, device_name: str = "OpenCL device") -> dict[str, Any]:
    """The trace of one profiled run; ``device_name`` names the process track."""
    metadata = [
        {
            "ph": "M",
            "name": "process_name",
            "pid": PROCESS_ID,
            "tid": QUEUE_THREAD_ID,
            "args": {"name": device_name},
        },
        {
            "ph": "M",
            "name": "thread_name",
            "pid": PROCESS_ID,
            "tid": QUEUE_THREAD_ID,
            "args": {"name": "OpenCL queue (in order)"},
        },
    ]
    launches = [
        {
            "ph": "X",
            "name": launch_name(launch),
            "cat": launch.op_type,
            "ts": _microseconds(launch.start_seconds),
            "dur": _microseconds(launch.device_seconds),
            "pid": PROCESS_ID,
            "tid": QUEUE_THREAD_ID,
            "args": {
                "node": launch.node,
                "kernel": launch.kernel,
                "program": launch.program,
                "global_size": list(launch.global_size),
                "local_size": "driver's choice" if launch.local_size is None else list(launch.local_size),
                "device_ms": launch.device_seconds * 1e3,
            },
        }
        for launch in profile.launches
    ]
    return {
        "traceEvents": metadata + launches,
        "displayTimeUnit": "ms",
        "otherData": {
            "device": device_name,
            "launches": len(profile.launches),
            "device_ms": profile.device_seconds * 1e3,
            "idle_ms": profile.idle_seconds * 1e3,
            "host_enqueue_ms": profile.host_enqueue_seconds * 1e3,
            "run_wall_ms": profile.wall_seconds * 1e3,
        },
    }


def write_chrome_trace(profile: RunProfile, path: str | Path, device_name: str = "OpenCL device") -> None:
    """Writes ``chrome_trace(profile, device_name)`` to ``path`` (via a temporary file and rename)."""
    text = json.dumps(chrome_trace(profile, device_name), indent=1)
    write_atomically(path, (text + "\n").encode("utf-8"))
