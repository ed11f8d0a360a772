#!/usr/bin/env python3
"""Would Winograd F(2x2, 3x3) pay on the CPU? Its multiply-adds against a direct 3x3 Conv.

F(2x2, 3x3) turns a 3x3 stride-1 Conv with C inputs and K outputs at H x W into 16
independent GEMMs of ceil(H/2) * ceil(W/2) tiles by C, times C by K (one per point of the
4x4 transformed tile), plus an input and an output transform. This script times, on PoCL
and in one process (rounds alternating their order), the direct Conv as the planner runs it
today and a 1x1 Conv of C -> K at ceil(H/2) x ceil(W/2), which is one of those 16 GEMMs on
our own GEMM kernel (`conv1x1_o32`); it prints both device times (profiled launches) and
16 x GEMM / direct. The transforms are not counted: a ratio well below 1 is room for them,
one near 1 says Winograd cannot win here. Layers: ResNet's 3x3 stages (C = K).

    python3 dev/bench/cpu_winograd_estimate.py [--runs 50] [--rounds 10] [--layers 64@56,256@14]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

_ROOT = Path(__file__).resolve().parents[2]
for _path in (_ROOT / "runtime", _ROOT / "tools" / "converter"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl import MaceRuntime  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402

WINOGRAD_GEMMS = 16  # points of F(2x2, 3x3)'s 4x4 transformed tile
LAYERS = "64@56,128@28,256@14,512@7"


def conv_runtime(channels: int, size: int, kernel: int, seed: int) -> tuple[MaceRuntime, np.ndarray]:
    """A profiled CPU runtime of one channels -> channels Conv ("same" padding) and its input."""
    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal((channels, channels, kernel, kernel)) * 0.05).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[kernel, kernel], pads=[kernel // 2] * 4)
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    x = rng.standard_normal((1, channels, size, size)).astype(np.float32)
    return MaceRuntime(convert_model(model), device="cpu", profile=True), x


def conv_device_seconds(runtime: MaceRuntime, x: np.ndarray) -> float:
    runtime.run_dict({"x": x})
    profile = runtime.last_profile()
    assert profile is not None
    return sum(launch.device_seconds for launch in profile.launches if launch.op_type == "Conv")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed runs per runtime (default: 50)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds (default: 10)")
    parser.add_argument(
        "--layers", default=LAYERS, help=f"CHANNELS@SIZE, comma-separated (default: {LAYERS})"
    )
    args = parser.parse_args(argv)
    layers = [tuple(int(v) for v in layer.split("@")) for layer in args.layers.split(",") if layer]
    runtimes = {}
    for channels, size in layers:
        runtimes[(channels, size, "direct")] = conv_runtime(channels, size, 3, seed=channels)
        runtimes[(channels, size, "gemm")] = conv_runtime(channels, -(-size // 2), 1, seed=channels)
    times: dict[tuple[int, int, str], list[float]] = {key: [] for key in runtimes}
    per_round = max(1, args.runs // args.rounds)
    for round_index in range(args.rounds + 1):
        order = list(runtimes.items())
        for key, (runtime, x) in order if round_index % 2 else order[::-1]:
            for _ in range(per_round):
                seconds = conv_device_seconds(runtime, x)
                if round_index:  # the first round warms up: this machine runs a process's first layers slower
                    times[key].append(seconds)
    print(f"PoCL, device time of the Conv launches, median of {per_round * args.rounds} runs each")
    print("layer | direct 3x3 ms | one tile GEMM ms | 16 GEMMs / direct")
    print("--- | --- | --- | ---")
    for channels, size in layers:
        direct = statistics.median(times[(channels, size, "direct")])
        gemm = statistics.median(times[(channels, size, "gemm")])
        print(
            f"{channels} -> {channels} at {size}x{size} | {direct * 1e3:.3f} | {gemm * 1e3:.3f} | "
            f"{WINOGRAD_GEMMS * gemm / direct:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
