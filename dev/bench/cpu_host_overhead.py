#!/usr/bin/env python3
"""Where a run's time goes on the CPU device (PoCL): kernels, driver gaps, host work.

For issue 15's small CPU models: is the host (Python per launch, input/output copies, the
final wait) a share worth cutting, or is the time in the kernels? Per model, one profiled
runtime (``MaceRuntime(profile=True)``) splits each run's wall time into

- model kernels: device time of the model's launches (OpenCL event START..END);
- layout kernels: the input NCHW -> NHWC4 and output NHWC4 -> NCHW conversions;
- driver gaps: device idle time between the first launch's start and the last one's end;
- outside: the rest of the wall time, before the first launch starts and after the last ends
  (input checks and upload copy, read-back, the final wait's wake-up);

and prints the host's enqueue time for the model's launches beside them (it overlaps the
kernels, so it is no share of the wall). Medians over ``--runs`` runs, each column's own
median, so the shares need not add to exactly 100 %. The first column is an unprofiled
runtime's median, timed in the same rounds (A B B A) as the profiled one: events cost time
on PoCL, so the split is of the profiled wall.

    python3 dev/bench/cpu_host_overhead.py [--runs 60] [--rounds 3] [--models a,b]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.append(str(_HERE))

from cpu_vs_onnxruntime import MODELS, data_input  # noqa: E402
from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.execution.engine import RunProfile  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402
from pocl_latency import INTERLEAVING, interleaved_times  # noqa: E402

SMALL = ("mobilenet_v2", "pp_lcnet_orientation", "squeezenet", "shufflenet")
LAYOUT = ("<input>", "<output>")


def split(profile: RunProfile) -> dict[str, float]:
    """Seconds of one profiled run by part (see the module docstring)."""
    model = sum(launch.device_seconds for launch in profile.launches if launch.node not in LAYOUT)
    layout = profile.device_seconds - model
    gaps = profile.idle_seconds
    return {
        "wall": profile.wall_seconds,
        "model kernels": model,
        "layout kernels": layout,
        "driver gaps": gaps,
        "outside": profile.wall_seconds - model - layout - gaps,
        "host enqueue": profile.host_enqueue_seconds,
    }


def measure(name: str, device: str, runs: int, rounds: int) -> str:
    """One table row: model ``name``'s run split into parts, medians over ``runs`` runs."""
    model = MODELS[name]()
    data = data_input(model)
    shape = tuple(d.dim_value or 1 for d in data.type.tensor_type.shape.dim)
    feed = {data.name: np.random.default_rng(0).uniform(-1.0, 1.0, shape).astype(np.float32)}
    graph = convert_model(model, {data.name: shape}, where=name)
    plain = MaceRuntime(graph, device=device)
    profiled = MaceRuntime(graph, device=device, profile=True)
    parts: list[dict[str, float]] = []

    def profiled_run() -> None:
        profiled.run(None, feed)
        parts.append(split(profiled.last_profile()))

    engines = {"plain": lambda: plain.run(None, feed), "profiled": profiled_run}
    for call in engines.values():
        for _ in range(5):
            call()
    parts.clear()
    times = interleaved_times(engines, runs, rounds)
    median = {key: statistics.median(part[key] for part in parts) for key in parts[0]}
    wall = median["wall"]
    shares = " | ".join(
        f"{median[key] * 1e3:.2f} ({median[key] / wall:.0%})"
        for key in ("model kernels", "layout kernels", "driver gaps", "outside", "host enqueue")
    )
    launches = len(profiled.last_profile().launches) - len(graph.inputs) - len(graph.outputs)
    return (
        f"{name} | {launches} | {statistics.median(times['plain']) * 1e3:.2f} | {wall * 1e3:.2f} | "
        f"{shares} | {median['host enqueue'] / launches * 1e6:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default=",".join(SMALL), help=f"from: {', '.join(MODELS)}")
    args = parser.parse_args(argv)
    names = [name for name in args.models.split(",") if name]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    print(f"{args.runs // args.rounds} runs per runtime in each of {args.rounds} rounds; {INTERLEAVING}")
    print(
        "model | launches | run ms (unprofiled) | profiled wall ms | model kernels | layout kernels | "
        "driver gaps | outside | host enqueue (overlaps) | enqueue us/launch"
    )
    print("--- | --- | --- | --- | --- | --- | --- | --- | --- | ---")
    for name in names:
        print(measure(name, args.device, args.runs, args.rounds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
