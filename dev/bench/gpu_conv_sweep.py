#!/usr/bin/env python3
"""GPU convolution variants over whole models: which route and conv2d_gpu_tiled tile shape
is fastest, per model and per layer (the data behind GPU_TILED_CONFIGS in ops/conv.py).

For each model (torchvision, batch 1, random weights, exported to ONNX and converted as
dev/bench/gpu_vs_torch.py does) and each variant, the model is planned for the GPU with
that variant applied, run with OpenCL profiling, and every node's device time recorded
(a Conv's time includes the eltwise Add it launches when its residual is not fused).
Variants:

  main        1x1 convolutions on conv2d_gpu (one row of pixels), residual Adds unfused,
              no split-K (the GPU plans before these three changes)
  default     the planner as it is
  M,N,IM,IN   every tiled convolution with this (TILE_M, TILE_N, ITEM_M, ITEM_N)
  split=T     split-K below T work-items (GPU_SPLIT_TARGET_ITEMS; 0: never)
  steps=S     split-K slices of at least S K steps (GPU_SPLIT_MIN_STEPS)
  chunk=C     input channel blocks per K step (GPU_TILED_CHUNK)

Per model it prints each variant's end-to-end median (a runtime without profiling, host
in, host out) and device time per run, then the per-layer oracle -- every Conv at its
fastest fixed configuration -- and the slowest layers with their time under each
variant. ``--json FILE`` writes all per-node medians.

    python3 dev/bench/gpu_conv_sweep.py [--models resnet50,mobilenet_v2] [--runs 30]
        [--variants 64,16,4,2/32,32,4,4/split=0] [--data-type fp16_fp32] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).absolute().parents[2]
for _path in (_ROOT / "runtime", _ROOT / "tools" / "converter", _ROOT / "dev" / "bench"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from gpu_vs_torch import onnx_bytes, seeded  # noqa: E402
from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.model.graph import Graph  # noqa: E402
from mace_cl.planning.ops import conv as conv_ops  # noqa: E402
from mace_cl.planning.planner import plan_graph  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402

Config = tuple[int, int, int, int]
DEFAULT_CONFIGS: tuple[Config, ...] = (
    (64, 16, 4, 2),
    (32, 16, 2, 2),
    (16, 8, 2, 1),
    (16, 16, 2, 2),
    (32, 32, 4, 4),
    (64, 32, 4, 4),
    (128, 16, 8, 2),
    (128, 32, 8, 4),
)


@contextmanager
def variant(name: str) -> Iterator[None]:
    """Patch the GPU conv planner for one variant; restore it afterwards."""
    keys = (
        "FC_MAX_ROWS",
        "fusable_residual",
        "GPU_TILED_CONFIGS",
        "GPU_TILED_KXK_CONFIGS",
        "GPU_SPLIT_TARGET_ITEMS",
        "GPU_SPLIT_MIN_STEPS",
        "GPU_TILED_CHUNK",
    )
    saved = {key: getattr(conv_ops, key) for key in keys}
    try:
        if name == "main":
            conv_ops.FC_MAX_ROWS = 1 << 30  # every 1x1 back on gpu_pointwise_launch
            conv_ops.fusable_residual = lambda *_: None  # type: ignore[assignment]
            conv_ops.GPU_SPLIT_TARGET_ITEMS = 0
        elif name.startswith("split="):
            conv_ops.GPU_SPLIT_TARGET_ITEMS = int(name.removeprefix("split="))
        elif name.startswith("steps="):
            conv_ops.GPU_SPLIT_MIN_STEPS = int(name.removeprefix("steps="))
        elif name.startswith("chunk="):
            conv_ops.GPU_TILED_CHUNK = int(name.removeprefix("chunk="))
        elif name != "default":  # 1x1 and KxK convolutions alike
            config = (tuple(int(v) for v in name.split(",")),)
            conv_ops.GPU_TILED_CONFIGS = conv_ops.GPU_TILED_KXK_CONFIGS = config
        yield
    finally:
        for key, value in saved.items():
            setattr(conv_ops, key, value)


def export(name: str, data_type: str) -> tuple[Graph, dict[str, np.ndarray]]:
    module, x = seeded(name)
    path = Path("/tmp") / f"gpu_conv_sweep_{name}.onnx"
    path.write_bytes(onnx_bytes(module, x))
    return convert_model(path, {}, data_type=data_type), {"input": x.numpy()}


def measure(
    graph: Graph, feed: dict[str, np.ndarray], runs: int
) -> tuple[float, float, dict[str, float], int, np.ndarray]:
    """(end-to-end median s, device median s, per-node device median s, launches, outputs)."""
    plain = MaceRuntime(graph, device="gpu")
    profiled = MaceRuntime(graph, device="gpu", profile=True)
    outputs = np.concatenate([v.reshape(-1) for v in plain.run_dict(feed).values()])
    for _ in range(5):
        plain.run_dict(feed)
        profiled.run_dict(feed)
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        plain.run_dict(feed)
        walls.append(time.perf_counter() - start)
    per_node: dict[str, list[float]] = defaultdict(list)
    devices = []
    for _ in range(runs):
        profiled.run_dict(feed)
        profile = profiled.last_profile()
        devices.append(profile.device_seconds)
        sums: dict[str, float] = defaultdict(float)
        for launch in profile.launches:
            sums[launch.node] += launch.device_seconds
        for node, seconds in sums.items():
            per_node[node].append(seconds)
    launches = len(profiled.last_profile().launches)
    medians = {node: statistics.median(v) for node, v in per_node.items()}
    return statistics.median(walls), statistics.median(devices), medians, launches, outputs


def describe_convs(graph: Graph) -> dict[str, str]:
    """Conv node -> "Cin->Cout KxK sS @HxW" (output size) from the GPU plan's shapes."""
    shapes = plan_graph(graph, device_kind="gpu").shapes
    labels = {}
    for node in graph.nodes:
        w = graph.constants.get(node.inputs[1]) if node.op_type == "Conv" else None
        if w is None:
            continue
        stride = node.attrs.get("strides", [1, 1])[0]
        group = node.attrs.get("group", 1)
        out = shapes[node.outputs[0]]
        grouped = f" g{group}" if group > 1 else ""
        labels[node.name] = (
            f"{w.shape[1] * group}->{w.shape[0]} {w.shape[2]}x{w.shape[3]} s{stride}{grouped} @{out[2]}x{out[3]}"
        )
    return labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,resnet18,mobilenet_v2,efficientnet_b0")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--data-type", default="fp32")
    parser.add_argument(
        "--variants",
        default="/".join(",".join(map(str, c)) for c in DEFAULT_CONFIGS),
        help="beyond main and default, /-separated: TILE_M,TILE_N,ITEM_M,ITEM_N, split=T, steps=S or chunk=C",
    )
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    extra = [c for c in args.variants.split("/") if c]
    configs = [c for c in extra if not c.startswith(("split=", "steps=", "chunk="))]
    variants = ["main", "default", *extra]
    report: dict[str, dict] = {}
    for name in [m for m in args.models.split(",") if m]:
        graph, feed = export(name, args.data_type)
        labels = describe_convs(graph)
        results: dict[str, tuple[float, float, dict[str, float], int, np.ndarray]] = {}
        print(f"\n## {name} ({args.data_type})")
        print("variant | end to end ms | device ms | launches | max rel diff vs first")
        print("--- | ---: | ---: | ---: | ---:")
        for var in variants:
            with variant(var):
                try:
                    results[var] = measure(graph, feed, args.runs)
                except Exception as exc:  # a configuration the device refuses: report, go on
                    print(f"{var} | failed: {type(exc).__name__}: {str(exc)[:100]}")
                    continue
            wall, device, _, launches, outputs = results[var]
            reference = next(iter(results.values()))[4]  # the first variant's outputs
            error = float(np.abs(outputs - reference).max() / (np.abs(reference).max() + 1e-30))
            print(f"{var} | {wall * 1e3:.3f} | {device * 1e3:.3f} | {launches} | {error:.1e}")
        fixed = [v for v in configs if v in results] or [v for v in variants[1:] if v in results]
        convs = [n for n in labels if all(n in results[v][2] for v in fixed)]
        if fixed and "default" in results:
            per_node_default = results["default"][2]
            best = {n: min(fixed, key=lambda v, n=n: results[v][2][n]) for n in convs}
            oracle = sum(per_node_default.values()) - sum(per_node_default[n] for n in convs)
            oracle += sum(results[best[n]][2][n] for n in convs)
            print(
                f"per-layer oracle (each Conv at its fastest variant of {len(fixed)}): device {oracle * 1e3:.3f} ms"
            )
            slow = sorted(convs, key=lambda n: -per_node_default[n])[: args.top]
            header: Callable[[str], str] = lambda v: v.replace(",", "/")  # noqa: E731
            print("layer | " + " | ".join(header(v) for v in variants if v in results) + " | best")
            print("--- | " + " | ".join("---:" for v in variants if v in results) + " | ---")
            for n in slow:
                cells = " | ".join(
                    f"{results[v][2].get(n, float('nan')) * 1e3:.3f}" for v in variants if v in results
                )
                print(f"{labels[n]} | {cells} | {header(best[n])}")
        report[name] = {
            var: {"wall": r[0], "device": r[1], "launches": r[3], "nodes": r[2]} for var, r in results.items()
        }
        report[name]["labels"] = labels  # type: ignore[assignment]
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
