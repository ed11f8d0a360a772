#!/usr/bin/env python3
"""A converter pass's effect on the GPU: each model converted with and without it, both
runtimes in one process, timed in interleaved rounds (A B B A ...).

For each model (torchvision, batch 1, random weights, exported as dev/bench/gpu_vs_torch.py
does) and data type it prints the median end-to-end latency (host in, host out) of both
runtimes and their ratio (with / without), the launches and device time of a profiled run
of each, and the largest difference between their outputs.

    python3 dev/bench/gpu_pass_ab.py --pass gather_conv [--models shufflenet_v2_x0_5]
        [--data-types fp32,fp32_tf32] [--runs 40] [--rounds 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[2]
# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
for _path in (_ROOT / "runtime", _ROOT / "tools" / "converter", _ROOT / "dev" / "bench"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

import onnx  # noqa: E402
from gpu_vs_torch import MODELS, onnx_bytes, seeded  # noqa: E402
from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.model.graph import Graph  # noqa: E402
from mace_cl_converter import convert_model, pipeline  # noqa: E402


def export(name: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    module, x = seeded(name)
    return onnx.load_from_string(onnx_bytes(module, x)), {"input": x.numpy()}


def convert_without(model: onnx.ModelProto, data_type: str, skipped: str) -> Graph:
    passes = list(pipeline.PASSES)
    pipeline.PASSES[:] = [entry for entry in passes if entry[0] != skipped]
    try:
        return convert_model(model, {}, data_type=data_type)
    finally:
        pipeline.PASSES[:] = passes


def profiled(graph: Graph, feed: dict[str, np.ndarray]) -> tuple[int, float]:
    """(launches, device ms) of the fastest of a few profiled runs."""
    runtime = MaceRuntime(graph, device="gpu", profile=True)
    profiles = []
    for _ in range(10):
        runtime.run_dict(feed)
        profiles.append(runtime.last_profile())
    best = min(profiles, key=lambda profile: profile.device_seconds)
    return len(best.launches), best.device_seconds * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pass", dest="skipped", required=True, help="converter pass name (pipeline.PASSES)")
    parser.add_argument("--models", default="shufflenet_v2_x0_5", help=f"from: {', '.join(MODELS)}")
    parser.add_argument("--data-types", default="fp32,fp32_tf32")
    parser.add_argument("--runs", type=int, default=40, help="runs per engine per round")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    if args.skipped not in {name for name, _ in pipeline.PASSES}:
        parser.error(
            f"no converter pass {args.skipped!r}; passes: {', '.join(n for n, _ in pipeline.PASSES)}"
        )
    print("model | data type | with ms | without ms | with / without | launches with, without | device ms")
    print("--- | --- | --- | --- | --- | --- | ---")
    for name in args.models.split(","):
        model, feed = export(name)
        for data_type in args.data_types.split(","):
            graphs = {
                "with": convert_model(model, {}, data_type=data_type),
                "without": convert_without(model, data_type, args.skipped),
            }
            runtimes = {key: MaceRuntime(graph, device="gpu") for key, graph in graphs.items()}
            outputs = {key: runtime.run_dict(feed) for key, runtime in runtimes.items()}
            difference = max(
                float(np.abs(outputs["with"][k] - outputs["without"][k]).max()) for k in outputs["with"]
            )
            times: dict[str, list[float]] = {key: [] for key in runtimes}
            order = list(runtimes)
            for round_index in range(args.rounds):
                for key in order if round_index % 2 == 0 else order[::-1]:
                    for _ in range(args.runs):
                        start = time.perf_counter()
                        runtimes[key].run_dict(feed)
                        times[key].append(time.perf_counter() - start)
            median = {key: statistics.median(values) * 1e3 for key, values in times.items()}
            with_profile, without_profile = (profiled(graphs[key], feed) for key in ("with", "without"))
            print(
                f"{name} | {data_type} | {median['with']:.3f} | {median['without']:.3f} | "
                f"{median['with'] / median['without']:.3f} | {with_profile[0]}, {without_profile[0]} | "
                f"{with_profile[1]:.3f}, {without_profile[1]:.3f} (max output difference {difference:.1e})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
