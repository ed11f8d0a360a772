#!/usr/bin/env python3
"""Half precision (data_type fp16_fp32) against our own float32 on one device, same process.

For each model: median end-to-end latency of both (interleaved in rounds), the device memory
each runtime holds (activations + weights + staging), and accuracy against onnxruntime in
float32 on ``--inputs`` image-like inputs: worst logit error relative to the largest logit,
and top-1 agreement (for float32 too, as the baseline).

Accuracy needs activations of a trained net's scale: torchvision's random initial weights leave
MobileNetV2's and EfficientNet-B0's activations near 1e-7, below half's normal range (6e-5), so
in fp16_fp32 they underflow and those two rows' accuracy columns say nothing about a trained
model (tests/e2e/test_fp16_models.py checks accuracy on the real example model instead). Their
latency and memory columns hold whatever the weights.

Models: torchvision classifiers with random weights where torch is installed (the GPU
machine: mobilenet_v2, resnet18, resnet50, efficientnet_b0, ... as dev/bench/gpu_vs_torch.py
builds them), or ``mobilenet_v2_onnx``, the torch-free MobileNetV2 of dev/bench/pocl_latency.py.

    python3 dev/bench/half_precision.py --device gpu --models mobilenet_v2,resnet18,resnet50,efficientnet_b0
    python3 dev/bench/half_precision.py --device cpu --models mobilenet_v2_onnx --runs 40 --inputs 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import onnx

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parents[1]
for _path in (_ROOT / "runtime", _ROOT / "tools" / "converter", _HERE):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl import MaceRuntime  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402
from pocl_latency import interleaved_times, mobilenet_v2  # noqa: E402

DATA_TYPES = ("fp32", "fp16_fp32")


def onnx_model(name: str) -> tuple[onnx.ModelProto, int]:
    """The model as ONNX, and its input size."""
    if name == "mobilenet_v2_onnx":
        return mobilenet_v2(seed=0, batch_norm=True), 224
    from gpu_vs_torch import MODELS, onnx_bytes, seeded

    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; choose mobilenet_v2_onnx or one of {', '.join(MODELS)}")
    module, x = seeded(name)
    return onnx.load_from_string(onnx_bytes(module, x)), MODELS[name][1]


def images(count: int, size: int) -> list[np.ndarray]:
    """Image-like inputs: [0, 1] values with coarse and fine structure, normalised to [-1, 1]."""
    rng = np.random.default_rng(16)
    result = []
    for _ in range(count):
        coarse = np.kron(rng.uniform(0, 1, (1, 3, size // 16, size // 16)), np.ones((16, 16)))
        weight = rng.uniform(0.2, 0.8)
        image = weight * coarse + (1 - weight) * rng.uniform(0, 1, (1, 3, size, size))
        result.append(((image - 0.5) / 0.5).astype(np.float32))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="gpu")
    parser.add_argument("--models", default="mobilenet_v2,resnet18,resnet50,efficientnet_b0")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--inputs", type=int, default=100)
    args = parser.parse_args(argv)
    import onnxruntime as ort

    print(f"device {args.device}; batch 1; fp16_fp32 against fp32, same process, interleaved rounds")
    print(
        "model | fp32 ms | fp16_fp32 ms | speed-up | fp32 MiB | fp16_fp32 MiB | memory ratio | "
        "fp32 top-1 / worst err | fp16_fp32 top-1 / worst err"
    )
    print("--- | --- | --- | --- | --- | --- | --- | --- | ---")
    speedups, memory_ratios = [], []
    for name in [n for n in args.models.split(",") if n]:
        model, size = onnx_model(name)
        input_name = model.graph.input[0].name
        runtimes = {
            data_type: MaceRuntime(
                convert_model(model, {input_name: (1, 3, size, size)}, where=name, data_type=data_type),
                device=args.device,
            )
            for data_type in DATA_TYPES
        }
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        agree = dict.fromkeys(DATA_TYPES, 0)
        worst = dict.fromkeys(DATA_TYPES, 0.0)
        inputs = images(args.inputs, size)
        for x in inputs:
            (reference,) = session.run(None, {input_name: x})[:1]
            for data_type, runtime in runtimes.items():
                (ours,) = runtime.run(None, {input_name: x})[:1]
                scale = float(np.max(np.abs(reference))) or 1.0
                worst[data_type] = max(worst[data_type], float(np.max(np.abs(ours - reference))) / scale)
                agree[data_type] += int(np.argmax(ours) == np.argmax(reference))
        feed = {input_name: inputs[0]}
        engines = {
            data_type: (lambda r=runtime, f=feed: r.run(None, f)) for data_type, runtime in runtimes.items()
        }
        for call in engines.values():
            for _ in range(10):
                call()
        times = interleaved_times(engines, args.runs, args.rounds)
        median = {data_type: statistics.median(values) for data_type, values in times.items()}
        memory = {
            data_type: runtime.device_memory_bytes()["total"] for data_type, runtime in runtimes.items()
        }
        speedups.append(median["fp32"] / median["fp16_fp32"])
        memory_ratios.append(memory["fp16_fp32"] / memory["fp32"])
        print(
            f"{name} | {median['fp32'] * 1e3:.2f} | {median['fp16_fp32'] * 1e3:.2f} | {speedups[-1]:.2f}x | "
            f"{memory['fp32'] / 2**20:.1f} | {memory['fp16_fp32'] / 2**20:.1f} | {memory_ratios[-1]:.2f} | "
            f"{agree['fp32']}/{len(inputs)} / {worst['fp32']:.1e} | "
            f"{agree['fp16_fp32']}/{len(inputs)} / {worst['fp16_fp32']:.1e}"
        )
    print(
        f"fp16_fp32 vs fp32: speed-up geometric mean {statistics.geometric_mean(speedups):.2f}x, "
        f"memory ratio geometric mean {statistics.geometric_mean(memory_ratios):.2f} over {len(speedups)} models"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
