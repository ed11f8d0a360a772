#!/usr/bin/env python3
"""GPU latency and memory: our runtime (OpenCL) vs PyTorch eager and torch.compile, same GPU.

Models (batch 1, float32, random weights, eval mode): seven torchvision classifiers at 224x224
(MobileNetV2, ResNet18, SqueezeNet 1.1, MobileNetV3-Small, EfficientNet-B0, ShuffleNetV2 x0.5,
ResNet50) and a detector-style network (MobileNetV2 features, an FPN-style top-down path with
upsampling and concatenation, class and box heads) at 320x320. Each is exported to ONNX from
the same torch module, converted by the rules_mace converter, and checked against torch
before timing. Every engine is timed end to end per call -- host input in, host output
out -- because that is what an app sees; timings alternate between engines in rounds.

torch engines: eager, torch.compile (default mode) and torch.compile(mode="reduce-overhead"),
which captures CUDA graphs: the strongest configuration a latency-minded user would pick, so
the last lines' geometric means are taken against it. torch runs with its defaults, under
which cuDNN convolutions multiply in TF32 on Ampere and later (torch.backends.cudnn.allow_tf32,
printed in the header); ours runs once per --data-types entry (fp32: float32 products;
fp32_tf32: TF32 tensor cores where the GPU has them), each its own engine and ratio line.

    python3 dev/bench/gpu_vs_torch.py [--runs 200] [--rounds 10] [--no-compile] [--models a,b]
        [--compile-modes reduce-overhead] [--data-types fp32,fp32_tf32]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).absolute().parents[2]
for _path in (_ROOT / "runtime", _ROOT / "tools" / "converter"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

import torch  # noqa: E402
import torchvision  # noqa: E402
from mace_cl import MaceRuntime  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402
from torch import nn  # noqa: E402


class DetectorStyle(nn.Module):
    """MobileNetV2 backbone, a two-level top-down path (upsample + concat), conv heads."""

    def __init__(self, classes: int = 20, anchors: int = 3) -> None:
        super().__init__()
        features = torchvision.models.mobilenet_v2(weights=None).features
        self.stage1, self.stage2, self.stage3 = features[:7], features[7:14], features[14:]
        self.lateral3 = nn.Conv2d(1280, 128, 1)
        self.lateral2 = nn.Conv2d(96, 128, 1)
        self.lateral1 = nn.Conv2d(32, 128, 1)
        self.smooth2 = nn.Sequential(nn.Conv2d(256, 128, 3, padding=1), nn.ReLU())
        self.smooth1 = nn.Sequential(nn.Conv2d(256, 128, 3, padding=1), nn.ReLU())
        self.cls = nn.Conv2d(128, anchors * classes, 3, padding=1)
        self.box = nn.Conv2d(128, anchors * 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        p3 = self.lateral3(c3)
        p2 = self.smooth2(
            torch.cat([self.lateral2(c2), nn.functional.interpolate(p3, scale_factor=2.0, mode="nearest")], 1)
        )
        p1 = self.smooth1(
            torch.cat([self.lateral1(c1), nn.functional.interpolate(p2, scale_factor=2.0, mode="nearest")], 1)
        )
        return torch.sigmoid(self.cls(p1)), self.box(p1)


# Name -> (constructor, input size). Constructors, so only the models asked for are built.
MODELS: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(weights=None), 224),
    "resnet18": (lambda: torchvision.models.resnet18(weights=None), 224),
    "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(weights=None), 224),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(weights=None), 224),
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(weights=None), 224),
    "shufflenet_v2_x0_5": (lambda: torchvision.models.shufflenet_v2_x0_5(weights=None), 224),
    "resnet50": (lambda: torchvision.models.resnet50(weights=None), 224),
    "detector": (DetectorStyle, 320),
}
REDUCE_OVERHEAD = "torch.compile reduce-overhead"


def models(names: list[str]) -> dict[str, tuple[nn.Module, int]]:
    torch.manual_seed(0)
    return {name: (MODELS[name][0](), MODELS[name][1]) for name in names}


def seeded(name: str) -> tuple[nn.Module, torch.Tensor]:
    """MODELS[name] in eval mode with seed-0 random weights, and a batch-1 random input, as
    gpu_pass_ab, gpu_conv_sweep and half_precision build it (main() here seeds once for all
    the models it times)."""
    torch.manual_seed(0)
    build, size = MODELS[name]
    return build().eval(), torch.randn(1, 3, size, size)


def onnx_bytes(module: nn.Module, x: torch.Tensor) -> bytes:
    """``module`` traced at ``x`` as an ONNX model (opset 13, TorchScript exporter, input
    "input"): what the GPU benchmarks convert."""
    buffer = io.BytesIO()
    torch.onnx.export(module, (x,), buffer, opset_version=13, dynamo=False, input_names=["input"])
    return buffer.getvalue()


def interleaved(engines: dict[str, Callable[[], object]], runs: int, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, call in engines.items():
            for _ in range(max(1, runs // rounds)):
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true", help="skip both torch.compile engines")
    parser.add_argument(
        "--compile-modes",
        default="default,reduce-overhead",
        help="torch.compile modes to time (default: default,reduce-overhead; compiling takes a while)",
    )
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma-separated, from: {', '.join(MODELS)} (default: all)",
    )
    parser.add_argument(
        "--data-types", default="fp32", help="our models' data types, each timed as an engine (default: fp32)"
    )
    args = parser.parse_args(argv)
    data_types = [dt for dt in args.data_types.split(",") if dt]
    names = [name for name in args.models.split(",") if name]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    against_strongest: dict[str, dict[str, float]] = {f"ours {dt}": {} for dt in data_types}
    device = torch.device("cuda")
    print(
        f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; batch 1, float32 inputs; "
        f"torch cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}"
    )
    print(
        "model | engine | median ms | p90 ms | ours / engine (median) | peak GPU memory MiB | max rel err vs torch"
    )
    print("--- | --- | --- | --- | --- | --- | ---")
    for name, (module, size) in models(names).items():
        module = module.eval()
        x = torch.randn(1, 3, size, size)
        onnx_path = Path("/tmp") / f"bench_{abs(hash(name))}.onnx"
        onnx_path.write_bytes(onnx_bytes(module, x))
        ours = {
            f"ours {dt}": MaceRuntime(convert_model(onnx_path, {}, data_type=dt), device="gpu")
            for dt in data_types
        }
        feed = {"input": x.numpy()}
        gpu_module = module.to(device)
        with torch.no_grad():
            reference = gpu_module(x.to(device))
        reference = [reference] if isinstance(reference, torch.Tensor) else list(reference)
        errors = {
            engine: max(
                float(np.abs(g - r.cpu().numpy()).max() / (np.abs(r.cpu().numpy()).max() + 1e-12))
                for g, r in zip(runtime.run_dict(feed).values(), reference, strict=True)
            )
            for engine, runtime in ours.items()
        }

        def eager(m: nn.Module = gpu_module, x: torch.Tensor = x) -> object:
            with torch.no_grad():
                out = m(x.to(device, non_blocking=True))
                outs = [out] if isinstance(out, torch.Tensor) else out
                return [o.cpu() for o in outs]

        engines: dict[str, Callable[[], object]] = {
            **{engine: (lambda o=runtime, f=feed: o.run_dict(f)) for engine, runtime in ours.items()},
            "torch eager": eager,
        }
        if not args.no_compile:
            for engine, mode in (("torch.compile", "default"), (REDUCE_OVERHEAD, "reduce-overhead")):
                if mode not in args.compile_modes.split(","):
                    continue
                try:
                    compiled = torch.compile(gpu_module, mode=mode)
                    for _ in range(3):  # compiles; reduce-overhead records its CUDA graph
                        eager(compiled)
                    engines[engine] = lambda c=compiled: eager(c)
                except Exception as exc:  # report, keep measuring the others
                    print(f"{name} | {engine} | failed: {type(exc).__name__}: {str(exc)[:80]}")
        for call in engines.values():
            for _ in range(10):
                call()
        torch.cuda.reset_peak_memory_stats()
        times = interleaved(engines, args.runs, args.rounds)
        first_ours = next(iter(ours))
        ours_median = statistics.median(times[first_ours])
        for engine in ours:
            if REDUCE_OVERHEAD in times:
                against_strongest[engine][name] = statistics.median(times[engine]) / statistics.median(
                    times[REDUCE_OVERHEAD]
                )
        for engine, values in times.items():
            median = statistics.median(values)
            memory = (
                ours[engine].device_memory_bytes()["total"] / 2**20
                if engine in ours
                else torch.cuda.max_memory_allocated() / 2**20
            )
            error = f"{errors[engine]:.1e}" if engine in ours else ""
            print(
                f"{name} | {engine} | {median * 1000:.2f} | {np.percentile(values, 90) * 1000:.2f} | "
                f"{ours_median / median:.2f} | {memory:.0f} | {error}"
            )
    print(f"(ours / engine: ours {data_types[0]} against each engine)")
    for engine, ratios_by_model in against_strongest.items():
        if not ratios_by_model:
            continue
        ratios = list(ratios_by_model.values())
        worst = max(ratios_by_model, key=ratios_by_model.__getitem__)
        print(
            f"{engine} / {REDUCE_OVERHEAD} (median latency): geometric mean "
            f"{statistics.geometric_mean(ratios):.2f}x over {len(ratios)} models; worst {worst} "
            f"{ratios_by_model[worst]:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
