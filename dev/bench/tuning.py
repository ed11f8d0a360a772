#!/usr/bin/env python3
"""Tuned local sizes against the plans' own: end-to-end latency ratio tuned / untuned.

For each model (those of dev/bench/cpu_vs_onnxruntime.py: batch 1, float32, seeded weights),
the runtime is tuned on the device in this process (mace_cl.execution.tuner, as
``mace_precompile --tune`` does), then an untuned and a tuned runtime run in alternating
rounds and their medians are compared; outputs must agree (the tuned sizes may not change
them). Also printed: the kernel instances tuned, the tunable launches' device time per run
before and after as the tuner measured it, and the tuning's wall time (on PoCL mostly spent
compiling code per local size). The last line is the geometric mean of the ratios.

The device is ``--device``, else $MACE_TEST_DEVICE (as the tests pick it), else PoCL's "cpu":

    python3 dev/bench/tuning.py [--models mobilenet_v2,squeezenet] [--candidates 30]
        [--tune-seconds 600] [--runs 100] [--rounds 5] [--device gpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

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

from cpu_vs_onnxruntime import MODELS, data_input  # noqa: E402
from mace_cl import MaceRuntime  # noqa: E402
from mace_cl.execution.tuner import tune  # noqa: E402
from mace_cl_converter import convert_model  # noqa: E402
from pocl_latency import interleaved_times  # noqa: E402

DEFAULT_MODELS = ("mobilenet_v2", "squeezenet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help=f"from: {', '.join(MODELS)}")
    parser.add_argument("--device", default=os.environ.get("MACE_TEST_DEVICE", "cpu"))
    parser.add_argument("--candidates", type=int, default=30, help="local sizes timed per kernel instance")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per candidate (the best counts)")
    parser.add_argument("--tune-seconds", type=float, default=None, help="per model tuning budget")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    names = [name for name in args.models.split(",") if name]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    print(
        f"tuned vs untuned local sizes on {args.device!r}, {args.candidates} candidates per kernel instance"
    )
    print(
        "model | device | instances tuned | tuning s | tunable device ms before -> after | "
        "untuned median ms | tuned median ms | tuned / untuned | max abs diff"
    )
    print("--- | --- | --- | --- | --- | --- | --- | --- | ---")
    ratios = {}
    for name in names:
        model = MODELS[name]()
        data = data_input(model)
        shape = tuple(d.dim_value or 1 for d in data.type.tensor_type.shape.dim)
        graph = convert_model(model, {data.name: shape}, where=name)
        feed = {data.name: np.random.default_rng(0).uniform(-1.0, 1.0, shape).astype(np.float32)}
        untuned = MaceRuntime(graph, device=args.device)
        result = tune(
            untuned,
            max_candidates=args.candidates,
            repeats=args.repeats,
            max_seconds=args.tune_seconds,
            feeds=feed,
        )
        tuned = MaceRuntime(graph, device=args.device, tuning=result.table)
        difference = max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(untuned.run(None, feed), tuned.run(None, feed), strict=True)
        )
        engines: dict[str, Callable[[], object]] = {
            "untuned": lambda r=untuned, f=feed: r.run(None, f),
            "tuned": lambda r=tuned, f=feed: r.run(None, f),
        }
        for call in engines.values():
            for _ in range(5):
                call()
        times = interleaved_times(engines, args.runs, args.rounds)
        median = {engine: statistics.median(values) for engine, values in times.items()}
        ratios[name] = median["tuned"] / median["untuned"]
        before = sum(item.default_seconds for item in result.instances)
        after = sum(item.tuned_seconds for item in result.instances)
        kept = sum(item.tuned_local is not None for item in result.instances)
        print(
            f"{name} | {untuned.device.name.strip()} | {kept}/{len(result.instances)} | {result.seconds:.0f} | "
            f"{before * 1e3:.2f} -> {after * 1e3:.2f} | {median['untuned'] * 1e3:.2f} | "
            f"{median['tuned'] * 1e3:.2f} | {ratios[name]:.2f}x | {difference:.1e}",
            flush=True,
        )
    print(
        f"tuned / untuned (median latency): geometric mean {statistics.geometric_mean(ratios.values()):.2f}x "
        f"over {len(ratios)} models"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
