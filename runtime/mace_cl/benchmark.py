"""mace_benchmark: start-up time, latency percentiles, per-op device time and memory of a model.

The model is a ``.mace`` file, a build manifest (``manifest.json``) or the folder of a
``mace_model`` target's output, which holds one. Inputs are seeded random arrays of the model's
input shapes. Latency is the wall time of ``run_dict`` (uploads, every launch, read-backs) on a
runtime without profiling; the per-op table and ``--trace`` come from one run of a second,
profiling runtime, since OpenCL profiling events add host cost to every launch.

pip installs this command as ``mace-benchmark``; in a clone, ``tools/bazel run
//dev/benchmark:mace_benchmark`` runs it (dev/benchmark/mace_benchmark.py).

Examples:
    mace-benchmark model.mace --device cpu --runs 200
    mace-benchmark bazel-bin/examples/text_orientation --trace trace.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mace_cl.chrome_trace import launch_name, profile_to_json, write_chrome_trace
from mace_cl.execution.device import DeviceSelectionError
from mace_cl.execution.engine import MaceRuntime, RunProfile
from mace_cl.model.container import FormatError
from mace_cl.model.graph import GraphError, TensorInfo
from mace_cl.model.manifest import MANIFEST_FILE_NAME
from mace_cl.planning.ops.base import OpError

PROG = "mace_benchmark"
MIB = 1 << 20
PERCENTILES = (50, 90, 99)


class UsageError(Exception):
    """A problem with the command line or its files that the user can fix."""


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", type=Path, help="a .mace file, a manifest.json, or a mace_model target's output folder"
    )
    parser.add_argument(
        "--device",
        default="any",
        help='OpenCL device: "cpu", "gpu", "any" or "<platform>:<device>" (default: any)',
    )
    parser.add_argument(
        "--compiled-program",
        type=Path,
        metavar="BIN",
        help="a mace_cl_compiled_program.bin to start from (.mace models only: a manifest names its own)",
    )
    parser.add_argument("--runs", type=_count(1), default=100, help="timed runs (default: 100)")
    parser.add_argument("--warmup", type=_count(0), default=10, help="untimed runs before them (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default: 0)")
    parser.add_argument(
        "--trace",
        type=Path,
        metavar="JSON",
        help="write a Chrome trace (chrome://tracing, ui.perfetto.dev) of one profiled run here",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object instead of text"
    )
    return parser


def user_path(path: Path) -> Path:
    """``bazel run`` starts tools in their runfiles folder: relative paths mean the caller's folder."""
    base = os.environ.get("BUILD_WORKING_DIRECTORY")
    return path if path.is_absolute() or not base else Path(base) / path


# ---- start-up -----------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    runtime: MaceRuntime
    name: str
    seconds: float  # wall time of creating the runtime


def start_runtime(model: Path, device: str, compiled_program: Path | None) -> Started:
    """Creates the runtime the way an app would: from the manifest when given one."""
    manifest = model / MANIFEST_FILE_NAME if model.is_dir() else model
    from_manifest = model.is_dir() or model.suffix == ".json"
    if from_manifest and compiled_program is not None:
        raise UsageError(f"{manifest} names its own compiled program; --compiled-program is for .mace files")
    started = time.perf_counter()
    if from_manifest:
        runtime = MaceRuntime.from_manifest(manifest, device=device)
    else:
        runtime = MaceRuntime(model, device=device, compiled_program=compiled_program)
    seconds = time.perf_counter() - started
    assert runtime.model_file is not None  # made from a file
    name = runtime.model_file.metadata.get("name") or (manifest.parent.name if from_manifest else model.stem)
    return Started(runtime, name, seconds)


def profiling_twin(runtime: MaceRuntime, device: str) -> MaceRuntime:
    """The same model, programs and device with profiling on. Programs come from this
    process's cache, so this costs little; a separate runtime keeps the timed runs free of
    profiling overhead."""
    return MaceRuntime(
        runtime.model_file or runtime.graph,
        device=device,
        compiled_program=runtime.compiled_programs,
        profile=True,
        plan_kind=runtime.plan_kind,
    )


# ---- measuring ------------------------------------------------------------------


def random_inputs(inputs: Sequence[TensorInfo], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for info in inputs:
        dtype = np.dtype(info.dtype)
        if dtype.kind == "f":
            feeds[info.name] = rng.standard_normal(info.shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[info.name] = rng.integers(0, 2, info.shape).astype(dtype)
        else:  # small non-negative integers are valid indices and counts
            feeds[info.name] = rng.integers(0, 8, info.shape).astype(dtype)
    return feeds


def time_runs(runtime: MaceRuntime, feeds: Mapping[str, np.ndarray], runs: int, warmup: int) -> list[float]:
    """Seconds of each of ``runs`` calls, after ``warmup`` untimed ones (first launches compile
    work-group code on some drivers, and caches warm up)."""
    for _ in range(warmup):
        runtime.run_dict(feeds)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        runtime.run_dict(feeds)
        seconds.append(time.perf_counter() - started)
    return seconds


def latency_summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """min, p50, p90, p99, max and mean in milliseconds (percentiles interpolate linearly)."""
    values = np.asarray(seconds, dtype=np.float64) * 1e3
    summary = {"min": float(values.min())}
    summary.update({f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES})
    summary.update({"max": float(values.max()), "mean": float(values.mean())})
    return summary


def op_table(profile: RunProfile) -> list[dict[str, Any]]:
    """Device time per "op type/kernel", largest first."""
    totals: dict[str, list[float]] = {}
    for launch in profile.launches:
        row = totals.setdefault(launch_name(launch), [0, 0.0])
        row[0] += 1
        row[1] += launch.device_seconds
    whole = profile.device_seconds or 1.0  # an empty profile has no time to divide
    rows = [
        {"name": name, "launches": int(count), "device_ms": seconds * 1e3, "percent": 100.0 * seconds / whole}
        for name, (count, seconds) in totals.items()
    ]
    return sorted(rows, key=lambda row: (-row["device_ms"], row["name"]))


def device_memory_bytes(runtime: MaceRuntime) -> dict[str, int]:
    """The runtime's device buffers by kind (``MaceRuntime.device_memory_bytes``), with the
    number of shared activation buffers the memory plan made."""
    return {**runtime.device_memory_bytes(), "activation_buffers": len(runtime.memory_plan.buffer_sizes)}


def host_peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes


# ---- the benchmark ------------------------------------------------------------------


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Runs the benchmark and returns its summary (the ``--json`` object)."""
    model = user_path(args.model)
    compiled = None if args.compiled_program is None else user_path(args.compiled_program)
    trace = None if args.trace is None else user_path(args.trace)
    if trace is not None and not trace.parent.is_dir():  # fail before the runs, not after
        raise UsageError(f"cannot write the trace {trace}: {trace.parent} is not a folder")
    if compiled is not None and not compiled.is_file():
        raise UsageError(f"{compiled}: no such compiled-program file")
    started = start_runtime(model, args.device, compiled)
    runtime = started.runtime
    feeds = random_inputs(runtime.graph.inputs, args.seed)
    seconds = time_runs(runtime, feeds, args.runs, args.warmup)
    # Before the profiling runtime exists, so the number is one runtime's.
    rss = host_peak_rss_bytes()
    profiled = profiling_twin(runtime, args.device)
    time_runs(profiled, feeds, 1, max(args.warmup, 1))
    profile = profiled.last_profile()
    device_name = runtime.device.name.strip()
    if trace is not None:
        write_chrome_trace(profile, trace, device_name)
    return {
        "model": started.name,
        "model_path": str(args.model),  # as given: relative paths mean the caller's folder
        "device": device_name,
        "platform": runtime.device.platform.name.strip(),
        "plan_kind": runtime.plan_kind,
        "startup_ms": started.seconds * 1e3,
        "startup_phases_ms": {phase: value * 1e3 for phase, value in runtime.init_timings.items()},
        "program_origins": runtime.program_origins(),
        "runs": args.runs,
        "warmup": args.warmup,
        "latency_ms": latency_summary_ms(seconds),
        "profiled_run": {
            "device_ms": profile.device_seconds * 1e3,
            "idle_ms": profile.idle_seconds * 1e3,
            "launches": len(profile.launches),
        },
        "ops": op_table(profile),
        "device_memory_bytes": device_memory_bytes(runtime),
        "host_peak_rss_bytes": rss,
        "trace": None if args.trace is None else str(args.trace),
        "profile": profile_to_json(profile),
    }


def format_report(summary: Mapping[str, Any]) -> str:
    latency = summary["latency_ms"]
    phases = ", ".join(f"{name} {ms:.1f}" for name, ms in summary["startup_phases_ms"].items())
    origins = ", ".join(f"{count} {origin}" for origin, count in sorted(summary["program_origins"].items()))
    run = summary["profiled_run"]
    memory = summary["device_memory_bytes"]
    lines = [
        f"model:    {summary['model']} ({summary['model_path']})",
        f"device:   {summary['device']} ({summary['platform']}; kernels planned for {summary['plan_kind']})",
        f"start-up: {summary['startup_ms']:.1f} ms ({phases} ms); programs: {origins or 'none'}",
        f"latency over {summary['runs']} runs after {summary['warmup']} warm-up runs, in ms:",
        "  " + "  ".join(f"{key} {latency[key]:.3f}" for key in ("min", "p50", "p90", "p99", "max", "mean")),
        f"device time of one profiled run: {run['device_ms']:.3f} ms in {run['launches']} launches, "
        f"plus {run['idle_ms']:.3f} ms idle between them",
        f"  {'op type/kernel':<36} {'launches':>8} {'device ms':>10} {'% device':>9}",
    ]
    lines += [
        f"  {row['name']:<36} {row['launches']:>8} {row['device_ms']:>10.4f} {row['percent']:>9.1f}"
        for row in summary["ops"]
    ]
    lines += [
        f"device memory allocated: {memory['total'] / MIB:.2f} MiB (activations {memory['activations'] / MIB:.2f} MiB "
        f"in {memory['activation_buffers']} buffers, constants {memory['constants'] / MIB:.2f} MiB, "
        f"input/output staging {memory['staging'] / MIB:.2f} MiB)",
        f"host peak RSS: {summary['host_peak_rss_bytes'] / MIB:.1f} MiB "
        "(CPU OpenCL devices allocate in host memory, so it includes their buffers)",
    ]
    if summary["trace"]:
        lines.append(f"trace:    {summary['trace']} (open in ui.perfetto.dev or chrome://tracing)")
    return "\n".join(lines)


def one_line(message: str) -> str:
    """Errors are one line; the device selector's lists the devices on lines of their own."""
    text = ""
    for part in filter(None, (line.strip() for line in message.splitlines())):
        text += part if not text else (" " if text.endswith(":") else "; ") + part
    return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = benchmark(args)
    except (UsageError, FormatError, GraphError, OpError, DeviceSelectionError) as exc:
        print(f"{PROG}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the trace's folder is read-only
        print(f"{PROG}: error: {exc.filename or 'a file'}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_report(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
