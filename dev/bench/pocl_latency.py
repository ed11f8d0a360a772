#!/usr/bin/env python3
"""Steady-state latency of a MobileNetV2-class model: our runtime vs onnxruntime (CPU).

Builds MobileNetV2 (torchvision layout: width 1.0, 224x224, batch 1, float32) as an ONNX
graph with seeded random weights, converts it with the rules_mace converter, and runs
both engines in this one process so that they see the same machine load:

- onnxruntime, CPU provider, ``intra_op_num_threads`` = ``--threads`` (default 2);
- our runtime on the OpenCL device ``--device`` (default: the CPU, i.e. PoCL).

Timings alternate between the engines in rounds, so slow phases of a shared machine hit
both. Prints median/p90 per engine and the ratio ours / onnxruntime, then a per-kernel
device-time profile (OpenCL profiling events) and the host cost per enqueue.

    python3 dev/bench/pocl_latency.py [--runs 200] [--rounds 10] [--bn] [--no-profile]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_ROOT = Path(__file__).resolve().parents[2]
# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
for _path in (_ROOT / "runtime", _ROOT / "tools" / "converter"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl.execution.engine import LaunchProfile, MaceRuntime, RunProfile  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402

INPUT = "input"
OUTPUT = "logits"

# MobileNetV2 inverted residual settings: (expansion t, channels c, repeats n, stride s).
MOBILENET_V2 = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


# ---- model ---------------------------------------------------------------------------


class OnnxBuilder:
    """Appends nodes and seeded random initializers to one ONNX graph."""

    def __init__(self, seed: int, batch_norm: bool) -> None:
        self.rng = np.random.default_rng(seed)
        self.batch_norm = batch_norm
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def constant(self, prefix: str, value: np.ndarray) -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def conv(self, x: str, c_in: int, c_out: int, kernel: int, stride: int, group: int, relu6: bool) -> str:
        """Conv (+ BatchNormalization unless folded) (+ Clip 0..6)."""
        fan_in = c_in // group * kernel * kernel
        # He-style scale keeps activations O(1) through 50 layers, so a comparison of the
        # outputs means something (no overflow, no all-zero ReLU6 saturation).
        w = self.rng.standard_normal((c_out, c_in // group, kernel, kernel)) * np.sqrt(2.0 / fan_in)
        inputs = [x, self.constant("w", w)]
        if not self.batch_norm:
            inputs.append(self.constant("b", self.rng.uniform(-0.1, 0.1, c_out)))
        y = self.name("conv")
        pad = kernel // 2
        self.nodes.append(
            helper.make_node(
                "Conv",
                inputs,
                [y],
                name=y,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[pad] * 4,
                group=group,
            )
        )
        if self.batch_norm:
            bn_inputs = [
                y,
                self.constant("gamma", self.rng.uniform(0.5, 1.5, c_out)),
                self.constant("beta", self.rng.uniform(-0.1, 0.1, c_out)),
                self.constant("mean", self.rng.uniform(-0.1, 0.1, c_out)),
                self.constant("var", self.rng.uniform(0.5, 1.5, c_out)),
            ]
            y = self.name("bn")
            self.nodes.append(helper.make_node("BatchNormalization", bn_inputs, [y], name=y, epsilon=1e-5))
        if relu6:
            low = self.constant("lo", np.array(0.0))
            high = self.constant("hi", np.array(6.0))
            z = self.name("relu6")
            self.nodes.append(helper.make_node("Clip", [y, low, high], [z], name=z))
            y = z
        return y

    def add(self, a: str, b: str) -> str:
        y = self.name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [y], name=y))
        return y


def mobilenet_v2(
    seed: int = 0, batch_norm: bool = False, classes: int = 1000, size: int = 224
) -> onnx.ModelProto:
    """MobileNetV2 1.0 with seeded random weights (opset 13)."""
    b = OnnxBuilder(seed, batch_norm)
    x = b.conv(INPUT, 3, 32, 3, 2, 1, relu6=True)
    c_in = 32
    for t, c, n, s in MOBILENET_V2:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c_in * t
            y = x
            if t != 1:
                y = b.conv(y, c_in, hidden, 1, 1, 1, relu6=True)
            y = b.conv(y, hidden, hidden, 3, stride, hidden, relu6=True)
            y = b.conv(y, hidden, c, 1, 1, 1, relu6=False)
            x = b.add(x, y) if stride == 1 and c_in == c else y
            c_in = c
    x = b.conv(x, c_in, 1280, 1, 1, 1, relu6=True)
    pooled, flat = b.name("gap"), b.name("flatten")
    b.nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled], name=pooled))
    b.nodes.append(helper.make_node("Flatten", [pooled], [flat], name=flat, axis=1))
    fc_w = b.constant("fc_w", b.rng.standard_normal((classes, 1280)) * np.sqrt(1.0 / 1280))
    fc_b = b.constant("fc_b", b.rng.uniform(-0.1, 0.1, classes))
    b.nodes.append(helper.make_node("Gemm", [flat, fc_w, fc_b], [OUTPUT], name="fc", transB=1))
    graph = helper.make_graph(
        b.nodes,
        "mobilenet_v2",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, classes])],
        b.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # onnxruntime 1.23 reads IR <= 10; 8 is what opset 13 shipped with
    onnx.checker.check_model(model)
    return model


def model_gflop(model: onnx.ModelProto, size: int) -> float:
    """Multiply-adds x 2 of the Conv and Gemm nodes (the bulk of the work)."""
    shapes = {INPUT: (3, size, size)}
    weights = {t.name: tuple(t.dims) for t in model.graph.initializer}
    flop = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            c_out, c_per_group, kh, kw = weights[node.input[1]]
            _, h, w = shapes[node.input[0]]
            stride = next(a.ints[0] for a in node.attribute if a.name == "strides")
            oh, ow = -(-h // stride), -(-w // stride)
            flop += 2 * c_out * c_per_group * kh * kw * oh * ow
            shapes[node.output[0]] = (c_out, oh, ow)
        elif node.op_type == "Gemm":
            n, k = weights[node.input[1]]
            flop += 2 * n * k
        else:
            shapes[node.output[0]] = shapes[node.input[0]]
    return flop * 1e-9


# ---- timing --------------------------------------------------------------------------


# How interleaved_times orders the engines; benchmarks print it beside their figures.
INTERLEAVING = "each round times the engines in order, then in reverse (A B B A)"


def interleaved_times(
    engines: dict[str, Callable[[], object]], runs: int, rounds: int
) -> dict[str, list[float]]:
    """``runs`` timed calls per engine, split into ``rounds`` rounds of A B B A blocks.

    Each round times half its calls per engine in the given order and half in reverse, so
    every engine follows another as often as it is followed: on a shared 2-core machine the
    engine timed right after the other was once measured up to ~20% slower, and a fixed
    order would put any such cost on one engine only."""
    times: dict[str, list[float]] = {name: [] for name in engines}
    per_round = max(1, runs // rounds)
    order = list(engines.items())
    for index in range(rounds):
        # An odd count's extra call goes to the forward half in odd rounds, the reverse in even.
        first = (per_round + index % 2) // 2
        for calls, sequence in zip((first, per_round - first), (order, order[::-1]), strict=True):
            for name, call in sequence:
                for _ in range(calls):
                    start = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - start)
    return times


def p90(values: list[float]) -> float:
    return float(np.percentile(values, 90))


@dataclass
class ProfileRow:
    label: str
    calls: int  # launches per run with this label
    median: float  # seconds per run, median over the profiled runs
    best: float  # seconds per run, the fastest run (least disturbed by other load)


def launch_label(launch: LaunchProfile) -> str:
    local = "x".join(map(str, launch.local_size)) if launch.local_size else "auto"
    return f"{launch.op_type} {launch.kernel} g={'x'.join(map(str, launch.global_size))} l={local}"


def profile_table(profiles: list[RunProfile], label: Callable[[LaunchProfile], str]) -> list[ProfileRow]:
    """Device time per run summed over the launches of each label, slowest first."""
    per_run: dict[str, list[float]] = defaultdict(list)
    calls: dict[str, int] = defaultdict(int)
    for index, profile in enumerate(profiles):
        seen: dict[str, float] = defaultdict(float)
        for launch in profile.launches:
            key = label(launch)
            seen[key] += launch.device_seconds
            if index == 0:
                calls[key] += 1
        for key, seconds in seen.items():
            per_run[key].append(seconds)
    rows = [ProfileRow(key, calls[key], statistics.median(v), min(v)) for key, v in per_run.items()]
    return sorted(rows, key=lambda row: -row.median)


# ---- main ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per engine (default 200)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating blocks the runs are split into")
    parser.add_argument("--warmup", type=int, default=20, help="untimed runs per engine first")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    parser.add_argument("--device", default="cpu", help="our OpenCL device selector (default cpu = PoCL)")
    parser.add_argument(
        "--bn", action="store_true", help="keep BatchNormalization nodes (the converter folds them)"
    )
    parser.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--profile-runs", type=int, default=20, help="profiled runs for the kernel table")
    parser.add_argument("--top", type=int, default=25, help="kernel table rows to print")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-kernel profile")
    args = parser.parse_args(argv)

    import onnxruntime as ort  # imported here so --help works without it
    import pyopencl as cl

    model = mobilenet_v2(seed=0, batch_norm=args.bn, size=args.size)
    x = np.random.default_rng(1).uniform(0.0, 1.0, (1, 3, args.size, args.size)).astype(np.float32)

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    start = time.perf_counter()
    graph = convert_model(model)
    convert_seconds = time.perf_counter() - start
    runtime = MaceRuntime(graph, device=args.device)
    init_seconds = sum(runtime.init_timings.values())

    expected = session.run([OUTPUT], {INPUT: x})[0]
    ours = runtime.run_dict({INPUT: x})[OUTPUT]
    error = float(np.max(np.abs(ours - expected)) / max(1e-6, float(np.max(np.abs(expected)))))

    engines: dict[str, Callable[[], object]] = {
        "onnxruntime": lambda: session.run([OUTPUT], {INPUT: x}),
        "ours": lambda: runtime.run_dict({INPUT: x}),
    }
    for call in engines.values():
        for _ in range(args.warmup):
            call()
    times = interleaved_times(engines, args.runs, args.rounds)

    device = runtime.device
    gflop = model_gflop(model, args.size)
    print(
        f"# MobileNetV2 1.0, batch 1, {args.size}x{args.size}, float32, {gflop:.2f} GFLOP"
        f"{', BatchNormalization kept in ONNX' if args.bn else ''}"
    )
    print(
        f"host: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs; {platform.processor() or ''}"
    )
    print(
        f"ours: {device.platform.name.strip()} {device.platform.version.strip()} / {device.name.strip()} "
        f"({device.max_compute_units} compute units); pyopencl {cl.VERSION_TEXT}"
    )
    print(f"onnxruntime {ort.__version__}, CPUExecutionProvider, intra_op_num_threads={args.threads}")
    print(
        f"graph: {len(graph.nodes)} nodes after conversion ({convert_seconds:.2f} s), "
        f"{len(runtime._launches)} kernel launches, init {init_seconds:.2f} s"
    )
    print(f"max |ours - onnxruntime| / max |onnxruntime| = {error:.2e}")
    print(
        f"timed: {args.runs} runs per engine in {args.rounds} alternating rounds, after {args.warmup} warm-up runs"
    )
    print()
    print(f"{'engine':<12} {'median ms':>10} {'p90 ms':>10} {'min ms':>10} {'GFLOP/s':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:<12} {median * 1e3:10.2f} {p90(values) * 1e3:10.2f} {min(values) * 1e3:10.2f} {gflop / median:8.1f}"
        )
    ratio_median = statistics.median(times["ours"]) / statistics.median(times["onnxruntime"])
    ratio_p90 = p90(times["ours"]) / p90(times["onnxruntime"])
    print(f"ratio ours / onnxruntime: median {ratio_median:.2f}x, p90 {ratio_p90:.2f}x")

    if args.no_profile:
        return 0
    profiled = MaceRuntime(graph, device=args.device, profile=True)
    for _ in range(5):
        profiled.run_dict({INPUT: x})
    profiles = []
    for _ in range(args.profile_runs):
        profiled.run_dict({INPUT: x})
        profiles.append(profiled.last_profile())
    device_total = statistics.median(p.device_seconds for p in profiles)
    enqueue = statistics.median(p.host_enqueue_seconds for p in profiles)
    wall = statistics.median(p.wall_seconds for p in profiles)
    node_launches = sum(1 for launch in profiles[0].launches if launch.op_type != "layout")
    print()
    print(f"# profile: {args.profile_runs} runs with a profiling queue (median and fastest run)")
    print(
        f"kernel device time per run {device_total * 1e3:.2f} ms (fastest {min(p.device_seconds for p in profiles) * 1e3:.2f}) "
        f"over {len(profiles[0].launches)} launches; run() wall {wall * 1e3:.2f} ms"
    )
    idle = statistics.median(p.idle_seconds for p in profiles)
    print(
        f"host enqueue: {enqueue * 1e3:.2f} ms for {node_launches} node launches "
        f"= {enqueue / max(1, node_launches) * 1e6:.1f} us per enqueue (overlaps device work)"
    )
    print(
        f"device idle between launches: {idle * 1e3:.2f} ms per run "
        f"= {idle / max(1, len(profiles[0].launches) - 1) * 1e6:.1f} us per launch"
    )
    for title, label, top in (
        ("op/kernel", lambda launch: f"{launch.op_type}/{launch.kernel}", None),
        (f"top {args.top} launch shapes (op, kernel, global size, local size)", launch_label, args.top),
    ):
        print()
        print(f"{title:<58} {'calls':>5} {'med ms':>7} {'best ms':>7} {'share':>6}")
        for row in profile_table(profiles, label)[:top]:
            print(
                f"{row.label:<58} {row.calls:5d} {row.median * 1e3:7.3f} {row.best * 1e3:7.3f} {row.median / device_total:6.1%}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
