#!/usr/bin/env python3
"""Per-kernel GPU profile of MobileNetV2 and ResNet18 (and optionally the detector-style
model of dev/bench/gpu_vs_torch.py) on our runtime, from OpenCL profiling events.

For each model (batch 1, float32, random weights): end-to-end latency per call (host in,
host out) of a runtime without profiling; then, over profiled runs
(``MaceRuntime(profile=True)``), the device time summed over all launches, the device
idle time between launches, the host time spent enqueueing, and the top kernels three
ways: by kernel (program options included), by op type, and the slowest single launches
(node, global/local size). That says whether time goes to a few serial kernels, to
many small ones, or to launch overhead -- the data for the next round of GPU kernels.

Models come from torchvision when torch is installed (``--source torch``, as
dev/bench/gpu_vs_torch.py exports them), else from the ONNX builder of dev/bench/pocl_latency.py
(``--source builtin``: MobileNetV2 only). Outputs are checked against onnxruntime (CPU)
when it is installed.

    python3 dev/bench/gpu_profile.py [--models mobilenetv2,resnet18,detector] [--device gpu]
        [--plan-kind gpu] [--runs 50] [--top 15]

``--device cpu --plan-kind gpu`` runs the GPU plans on PoCL (a smoke test, not timings).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[2]
# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
for _path in (_ROOT / "runtime", _ROOT / "tools" / "converter", _ROOT / "dev" / "bench"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl.execution.engine import LaunchProfile, MaceRuntime, RunProfile  # noqa: E402
from mace_cl.model.graph import Graph  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402

MODELS = ("mobilenetv2", "resnet18", "detector")


def _torch_models(names: list[str]) -> dict[str, tuple[bytes, int]]:
    """ONNX bytes and input size per model, exported from torchvision like gpu_vs_torch."""
    import torch
    import torchvision

    torch.manual_seed(0)
    builders = {
        "mobilenetv2": (lambda: torchvision.models.mobilenet_v2(weights=None), 224),
        "resnet18": (lambda: torchvision.models.resnet18(weights=None), 224),
    }
    if "detector" in names:
        from gpu_vs_torch import DetectorStyle

        builders["detector"] = (DetectorStyle, 320)
    exported = {}
    for name in names:
        build, size = builders[name]
        buffer = io.BytesIO()
        module = build().eval()
        torch.onnx.export(
            module,
            (torch.randn(1, 3, size, size),),
            buffer,
            opset_version=13,
            dynamo=False,
            input_names=["input"],
        )
        exported[name] = (buffer.getvalue(), size)
    return exported


def _builtin_models(names: list[str]) -> dict[str, tuple[bytes, int]]:
    from pocl_latency import mobilenet_v2

    exported = {}
    for name in names:
        if name != "mobilenetv2":
            print(f"{name}: needs torch/torchvision (--source torch); skipped")
            continue
        exported[name] = (mobilenet_v2(seed=0).SerializeToString(), 224)
    return exported


def _convert(onnx_bytes: bytes) -> Graph:
    path = Path("/tmp") / f"rules_mace_gpu_profile_{abs(hash(onnx_bytes))}.onnx"
    path.write_bytes(onnx_bytes)
    return convert_model(path, {})


def _reference_error(onnx_bytes: bytes, feeds: dict[str, np.ndarray], ours: dict[str, np.ndarray]) -> str:
    try:
        import onnxruntime as ort
    except ImportError:
        return "not checked (no onnxruntime)"
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    errors = []
    for name, expected in zip(names, session.run(names, feeds), strict=True):
        got = ours[name]
        errors.append(float(np.abs(got - expected).max() / (np.abs(expected).max() + 1e-12)))
    return f"max rel err vs onnxruntime {max(errors):.1e}"


def _table(profiles: list[RunProfile], key: Callable[[LaunchProfile], str], top: int, title: str) -> None:
    """Device ms per run (median over runs) summed per ``key(launch)``, slowest first."""
    per_run: dict[str, list[float]] = defaultdict(list)
    calls: dict[str, int] = defaultdict(int)
    for index, profile in enumerate(profiles):
        sums: dict[str, float] = defaultdict(float)
        for launch in profile.launches:
            label = key(launch)
            sums[label] += launch.device_seconds
            if index == 0:
                calls[label] += 1
        for label, seconds in sums.items():
            per_run[label].append(seconds)
    total = statistics.median(p.device_seconds for p in profiles)
    rows = sorted(((statistics.median(v), label) for label, v in per_run.items()), reverse=True)
    print(f"\n  {title}")
    print("  | device ms | % of device | launches | what |")
    print("  | ---: | ---: | ---: | --- |")
    for seconds, label in rows[:top]:
        print(f"  | {seconds * 1e3:.3f} | {100 * seconds / total:.1f} | {calls[label]} | {label} |")


def _size(values: tuple[int, ...] | None) -> str:
    return "x".join(map(str, values)) if values else "auto"


def _by_kernel(launch: LaunchProfile, options: dict[str, str]) -> str:
    return f"{launch.kernel} {options.get(launch.kernel + '@' + launch.node, '')}".strip()


def profile_model(name: str, onnx_bytes: bytes, size: int, args: argparse.Namespace) -> None:
    graph = _convert(onnx_bytes)
    feeds = {
        graph.inputs[0].name: np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(np.float32)
    }
    plain = MaceRuntime(graph, device=args.device, plan_kind=args.plan_kind)
    profiled = MaceRuntime(graph, device=args.device, plan_kind=args.plan_kind, profile=True)
    print(
        f"\n## {name} {size}x{size}: {plain.device.name.strip()} (plan kind {plain.plan_kind}); "
        f"{_reference_error(onnx_bytes, feeds, plain.run_dict(feeds))}"
    )

    for _ in range(args.warmup):
        plain.run_dict(feeds)
        profiled.run_dict(feeds)
    walls = []
    for _ in range(args.runs):
        start = time.perf_counter()
        plain.run_dict(feeds)
        walls.append(time.perf_counter() - start)
    profiles = []
    for _ in range(args.runs):
        profiled.run_dict(feeds)
        profiles.append(profiled.last_profile())

    launches = len(profiles[0].launches)
    med = statistics.median
    print(
        f"  end to end (no profiling): median {med(walls) * 1e3:.2f} ms, "
        f"p90 {np.percentile(walls, 90) * 1e3:.2f} ms, {launches} launches per run"
    )
    print(
        f"  profiled: device {med(p.device_seconds for p in profiles) * 1e3:.2f} ms, "
        f"idle between launches {med(p.idle_seconds for p in profiles) * 1e3:.2f} ms, "
        f"host enqueue {med(p.host_enqueue_seconds for p in profiles) * 1e3:.2f} ms, "
        f"wall {med(p.wall_seconds for p in profiles) * 1e3:.2f} ms"
    )

    # Program options per launch, so variants (OUT_PIXELS, filter size) show apart.
    options: dict[str, str] = {}
    for node, plan in zip(profiled.graph.nodes, profiled.plan.node_plans, strict=True):
        for launch in plan.launches:
            opts = [o for o in launch.program.options if not o.startswith("-DACTIVATION")]
            options[launch.kernel + "@" + node.name] = " ".join(opts)
    _table(profiles, lambda launch: _by_kernel(launch, options), args.top, "by kernel (program options)")
    _table(profiles, lambda launch: launch.op_type, args.top, "by op type")
    _table(
        profiles,
        lambda launch: (
            f"{launch.node} ({launch.op_type}) {_by_kernel(launch, options)} "
            f"g={_size(launch.global_size)} l={_size(launch.local_size)}"
        ),
        args.top,
        "slowest launches",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default="mobilenetv2,resnet18",
        help=f"comma-separated, of {', '.join(MODELS)} (default mobilenetv2,resnet18)",
    )
    parser.add_argument(
        "--source",
        choices=["auto", "torch", "builtin"],
        default="auto",
        help="torchvision models (auto: when torch is installed) or the builtin MobileNetV2",
    )
    parser.add_argument("--device", default="gpu", help="OpenCL device selector (default gpu)")
    parser.add_argument("--plan-kind", default=None, help="plan for this device kind (default: the device's)")
    parser.add_argument("--runs", type=int, default=50, help="timed and profiled runs each (default 50)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--top", type=int, default=15, help="rows per table (default 15)")
    args = parser.parse_args(argv)
    names = [n.strip().lower() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    source = args.source
    if source == "auto":
        try:
            import torchvision  # noqa: F401

            source = "torch"
        except ImportError:
            source = "builtin"
    models = _torch_models(names) if source == "torch" else _builtin_models(names)
    print(f"# GPU profile: batch 1, float32, models from {source}, {args.runs} runs each")
    for name, (onnx_bytes, size) in models.items():
        profile_model(name, onnx_bytes, size, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
