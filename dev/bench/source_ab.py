#!/usr/bin/env python3
"""CPU latency of the runtime and converter of other commits against this checkout's, in one process.

Kernel and planner changes are small against this machine's noise between processes (10-50 %),
so the trees are compared in one process: each commit's runtime/, kernels/ and tools/converter/
are exported with `git archive` into a temporary folder, imported in turn (the modules of one
tree are dropped before the next is imported; the runtimes made keep theirs) and used to convert
and plan the same model; then the runtimes are timed in interleaved rounds (A B B A, as
cpu_vs_onnxruntime.py times engines). Printed per model: each tree's median latency, its ratio to
the first tree's, its launch count and its largest output difference from the first tree's.
With --profile, device time per kernel name instead (OpenCL profiling events, medians).

    python3 dev/bench/source_ab.py --revs 40a7b1a [--models shufflenet,squeezenet] [--runs 90]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parents[1]
for _path in (_ROOT / "tests", _ROOT / "tests" / "e2e", _HERE):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from cpu_vs_onnxruntime import MODELS, data_input  # noqa: E402
from pocl_latency import INTERLEAVING, interleaved_times  # noqa: E402

TREE_PATHS = ("runtime", "kernels", "tools/converter")
CURRENT = "checkout"  # the tag of this checkout's tree


def export_tree(rev: str, into: Path) -> Path:
    """``rev``'s runtime, kernels and converter under ``into`` (git archive, symlinks kept)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(_ROOT), "archive", rev, *TREE_PATHS], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def import_tree(root: Path) -> tuple[Any, Callable[..., Any]]:
    """MaceRuntime and convert_model of the tree at ``root``, imported afresh."""
    for name in [name for name in sys.modules if name.startswith("mace_cl")]:
        del sys.modules[name]
    paths = [str(root / "runtime"), str(root / "tools" / "converter")]
    sys.path[:0] = paths
    try:
        from mace_cl import MaceRuntime
        from mace_cl_converter import convert_model
    finally:
        del sys.path[: len(paths)]
    return MaceRuntime, convert_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--revs", required=True, help="commits to compare with this checkout, comma-separated"
    )
    parser.add_argument("--models", default="shufflenet", help=f"from: {', '.join(MODELS)}")
    parser.add_argument("--runs", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="device time per kernel instead")
    args = parser.parse_args(argv)
    names = [name for name in args.models.split(",") if name]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    with tempfile.TemporaryDirectory() as scratch:
        trees = {rev: export_tree(rev, Path(scratch) / rev) for rev in args.revs.split(",") if rev}
        trees[CURRENT] = _ROOT
        runtimes: dict[tuple[str, str], Any] = {}
        for tag, root in trees.items():
            runtime_class, convert = import_tree(root)
            for name in names:
                model = MODELS[name]()
                data = data_input(model)
                shape = tuple(d.dim_value or 1 for d in data.type.tensor_type.shape.dim)
                graph = convert(model, {data.name: shape}, where=name)
                runtimes[name, tag] = runtime_class(graph, device="cpu", profile=args.profile)
    print(("device ms per kernel" if args.profile else INTERLEAVING) + f"; trees: {', '.join(trees)}")
    for name in names:
        model = MODELS[name]()
        data = data_input(model)
        shape = tuple(d.dim_value or 1 for d in data.type.tensor_type.shape.dim)
        feed = {data.name: np.random.default_rng(0).uniform(-1.0, 1.0, shape).astype(np.float32)}
        first = [np.asarray(out) for out in runtimes[name, next(iter(trees))].run(None, feed)]
        if args.profile:
            _profile(name, {tag: runtimes[name, tag] for tag in trees}, feed, args.runs)
            continue
        engines = {tag: (lambda r=runtimes[name, tag], f=feed: r.run(None, f)) for tag in trees}
        for call in engines.values():
            for _ in range(5):
                call()
        median = {
            tag: statistics.median(times) * 1e3
            for tag, times in interleaved_times(engines, args.runs, args.rounds).items()
        }
        base = median[next(iter(trees))]
        for tag in trees:
            runtime = runtimes[name, tag]
            outs = runtime.run(None, feed)
            difference = max(
                float(np.max(np.abs(o - f))) / (float(np.max(np.abs(f))) or 1.0)
                for o, f in zip(outs, first, strict=True)
            )
            launches = sum(len(plan.launches) for plan in runtime.plan.node_plans)
            print(
                f"{name} | {tag} | {median[tag]:.3f} ms | {median[tag] / base:.3f}x | {launches} launches | "
                f"{difference:.1e}",
                flush=True,
            )
    return 0


def _profile(name: str, runtimes: dict[str, Any], feed: dict[str, np.ndarray], runs: int) -> None:
    samples: dict[str, dict[str, list[float]]] = {tag: defaultdict(list) for tag in runtimes}
    for _ in range(runs):
        for tag, runtime in runtimes.items():
            runtime.run(None, feed)
            profile = runtime.last_profile()
            per_kernel: dict[str, float] = defaultdict(float)
            for launch in profile.launches:
                per_kernel[launch.kernel] += launch.device_seconds
            per_kernel["(all kernels)"] = profile.device_seconds
            for kernel, seconds in per_kernel.items():
                samples[tag][kernel].append(seconds)
    first = next(iter(runtimes))
    kernels = sorted(
        {k for tag in samples for k in samples[tag]}, key=lambda k: -sum(samples[first].get(k, [0.0]))
    )
    print(f"{name} | kernel | " + " | ".join(runtimes))
    for kernel in kernels:
        cells = [
            f"{statistics.median(samples[tag][kernel]) * 1e3:.3f}" if kernel in samples[tag] else "-"
            for tag in runtimes
        ]
        print(f"{name} | {kernel} | " + " | ".join(cells))


if __name__ == "__main__":
    raise SystemExit(main())
