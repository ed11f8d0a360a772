#!/usr/bin/env python3
"""Winograd F(2x2, 3x3) against the direct 3x3 convolution on the CPU (PoCL), layer by layer.

Each layer is a one-Conv model (3x3, stride 1, "same" padding, C_in -> C_out at H x W),
planned twice in one process: as F(2x2, 3x3) whatever its size (``takes_winograd``'s
thresholds lowered to 1) and as the direct ``conv2d_o32`` (thresholds out of reach). Rounds
alternate their order; the first round warms up and is not counted. Prints the device time
of the Conv's launches (profiled) of each and F(2x2, 3x3) / direct: below 1, the Winograd
path is faster.

    python3 dev/bench/cpu_winograd.py [--runs 50] [--rounds 10] [--layers 64@56,256x128@14]
    python3 dev/bench/cpu_winograd.py --models resnet50,inception_v1,detector [--runs 60] [--rounds 3]

A layer is CHANNELS@SIZE (C_in = C_out) or CINxCOUT@SIZE. The default is ResNet's 3x3
stages and smaller layers near the thresholds (``WINOGRAD_MIN_CHANNELS``, ``_TILES``).
``--models`` (names of dev/bench/cpu_vs_onnxruntime.py) times whole models instead, wall
time per run, planned as the planner does (F(2x2, 3x3) where its thresholds allow) and with
F(2x2, 3x3) off, in alternating rounds (pocl_latency.interleaved_times).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parents[1]
for _path in (_ROOT / "runtime", _ROOT / "tools" / "converter", _HERE):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.planning.ops import winograd  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402

LAYERS = "64@56,128@28,256@14,512@7,16@56,32@56,32@28,64@14,16x64@28,64x16@28"
NEVER = 1 << 30  # a threshold no layer reaches


def parse_layer(text: str) -> tuple[int, int, int]:
    channels, size = text.split("@")
    c_in, _, c_out = channels.partition("x")
    return int(c_in), int(c_out or c_in), int(size)


def conv_model(c_in: int, c_out: int, size: int, seed: int) -> tuple[bytes, np.ndarray]:
    """A one-Conv model (3x3, "same" padding, bias) as converted bytes, and an input."""
    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal((c_out, c_in, 3, 3)) * 0.05).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return convert_model(model), rng.standard_normal((1, c_in, size, size)).astype(np.float32)


def runtime_with(model: bytes, threshold: int | None, profile: bool = True) -> MaceRuntime:
    """A CPU runtime of ``model`` planned with both Winograd thresholds at ``threshold``
    (None: the planner's own)."""
    saved = winograd.WINOGRAD_MIN_CHANNELS, winograd.WINOGRAD_MIN_TILES
    if threshold is not None:
        winograd.WINOGRAD_MIN_CHANNELS = winograd.WINOGRAD_MIN_TILES = threshold
    try:
        return MaceRuntime(model, device="cpu", profile=profile)
    finally:
        winograd.WINOGRAD_MIN_CHANNELS, winograd.WINOGRAD_MIN_TILES = saved


def conv_device_seconds(runtime: MaceRuntime, x: np.ndarray) -> tuple[float, np.ndarray]:
    (y,) = runtime.run_dict({"x": x}).values()
    profile = runtime.last_profile()
    assert profile is not None
    return sum(launch.device_seconds for launch in profile.launches if launch.op_type == "Conv"), y


def compare_models(names: list[str], runs: int, rounds: int) -> None:
    from cpu_vs_onnxruntime import MODELS, data_input
    from pocl_latency import INTERLEAVING, interleaved_times

    print(
        f"PoCL, wall time per run, {runs // rounds} runs per engine in each of {rounds} rounds; {INTERLEAVING}"
    )
    print(
        "model | launches direct | launches F(2x2, 3x3) | direct ms | F(2x2, 3x3) ms | ratio"
        " | max difference / max |output|"
    )
    print("--- | --- | --- | --- | --- | --- | ---")
    for name in names:
        onnx_model = MODELS[name]()
        data = data_input(onnx_model)
        shape = tuple(d.dim_value or 1 for d in data.type.tensor_type.shape.dim)
        feed = {data.name: np.random.default_rng(0).uniform(-1.0, 1.0, shape).astype(np.float32)}
        model = convert_model(onnx_model, {data.name: shape}, where=name)
        runtimes = {"direct": runtime_with(model, NEVER, False), "winograd": runtime_with(model, None, False)}
        outputs = {key: runtime.run(None, feed) for key, runtime in runtimes.items()}
        difference = max(
            float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) or 1.0))
            for a, b in zip(outputs["direct"], outputs["winograd"], strict=True)
        )
        engines = {key: (lambda r=runtime, f=feed: r.run(None, f)) for key, runtime in runtimes.items()}
        for call in engines.values():
            for _ in range(5):
                call()
        median = {
            key: statistics.median(values) for key, values in interleaved_times(engines, runs, rounds).items()
        }
        launches = {key: sum(len(p.launches) for p in r.plan.node_plans) for key, r in runtimes.items()}
        print(
            f"{name} | {launches['direct']} | {launches['winograd']} | {median['direct'] * 1e3:.2f} | "
            f"{median['winograd'] * 1e3:.2f} | {median['winograd'] / median['direct']:.2f} | {difference:.1e}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed runs per runtime (default: 50)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds (default: 10)")
    parser.add_argument("--layers", default=LAYERS, help=f"comma-separated (default: {LAYERS})")
    parser.add_argument("--models", default="", help="whole models instead (cpu_vs_onnxruntime.py's names)")
    args = parser.parse_args(argv)
    if args.models:
        compare_models([name for name in args.models.split(",") if name], args.runs, args.rounds)
        return 0
    layers = [parse_layer(layer) for layer in args.layers.split(",") if layer]
    runtimes = {}
    for layer in layers:
        model, x = conv_model(*layer, seed=sum(layer))
        runtimes[(layer, "winograd")] = (runtime_with(model, 1), x)
        runtimes[(layer, "direct")] = (runtime_with(model, NEVER), x)
    times: dict[tuple[tuple[int, int, int], str], list[float]] = {key: [] for key in runtimes}
    outputs: dict[tuple[tuple[int, int, int], str], np.ndarray] = {}
    per_round = max(1, args.runs // args.rounds)
    for round_index in range(args.rounds + 1):
        order = list(runtimes.items())
        for key, (runtime, x) in order if round_index % 2 else order[::-1]:
            for _ in range(per_round):
                seconds, outputs[key] = conv_device_seconds(runtime, x)
                if round_index:  # the first round warms up: this machine runs a process's first layers slower
                    times[key].append(seconds)
    print(f"PoCL, device time of the Conv launches, median of {per_round * args.rounds} runs each")
    print("layer | direct ms | F(2x2, 3x3) ms | F(2x2, 3x3) / direct | max abs difference")
    print("--- | --- | --- | --- | ---")
    for layer in layers:
        c_in, c_out, size = layer
        direct = statistics.median(times[(layer, "direct")])
        fast = statistics.median(times[(layer, "winograd")])
        difference = float(np.max(np.abs(outputs[(layer, "winograd")] - outputs[(layer, "direct")])))
        print(
            f"{c_in} -> {c_out} at {size}x{size} | {direct * 1e3:.3f} | {fast * 1e3:.3f} | "
            f"{fast / direct:.2f} | {difference:.1e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
