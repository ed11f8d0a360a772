#!/usr/bin/env python3
"""Soak: thousands of inferences in one process; reports memory and OpenCL object counts.

    python3 dev/soak/soak.py --iterations 20000 --interval 2000

Prints, every --interval runs: resident memory (psutil), open file descriptors, threads,
Python objects tracked by the garbage collector, and live pyopencl objects by type. The
first interval is warm-up (allocator pools, lazily built state); growth is measured from
its end. Exit status 1 when growth exceeds --max-rss-growth-mb or any OpenCL object count
changes after warm-up.

pyopencl Events are not tracked by the garbage collector, so objects are counted over
everything gc tracks plus what those objects refer to directly: an Event, Buffer or
Kernel kept alive from Python is found; one leaked inside the C library shows up as RSS.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pyopencl as cl

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
sys.path.append(str(Path(__file__).absolute().parents[2] / "runtime"))

from mace_cl import Graph, MaceRuntime, Node, TensorInfo

# 128 KiB per output: a per-run leak of an output array or buffer grows RSS by that much
# per run, far above the noise of a few MiB.
SHAPE = (1, 32, 32, 32)
_CL_TYPES = (cl.MemoryObjectHolder, cl.Kernel, cl.Program, cl.Event, cl.CommandQueue, cl.Context)


def soak_model() -> Graph:
    rng = np.random.default_rng(0)
    return Graph(
        inputs=[TensorInfo("x", SHAPE)],
        outputs=[TensorInfo("y", SHAPE), TensorInfo("s", SHAPE)],
        nodes=[
            Node("Mul", "scale", ["x", "w"], ["a"], {"activation": "relu"}),
            Node("Add", "shift", ["a", "x"], ["b"]),
            Node("Sigmoid", "gate", ["b"], ["s"]),
            Node("Softmax", "softmax", ["b"], ["y"], {"axis": 1}),
        ],
        constants={"w": rng.uniform(0.5, 1.5, (1, 32, 1, 1)).astype(np.float32)},
    )


def cl_object_counts() -> dict[str, int]:
    """Live pyopencl objects by type name (see the module docstring for the method)."""
    gc.collect()
    seen: set[int] = set()
    counts: Counter[str] = Counter()
    tracked = gc.get_objects()
    for obj in tracked:
        for candidate in (obj, *gc.get_referents(obj)):
            if isinstance(candidate, _CL_TYPES) and id(candidate) not in seen:
                seen.add(id(candidate))
                counts[type(candidate).__name__] += 1
    return dict(sorted(counts.items()))


@dataclass
class Sample:
    runs: int
    seconds: float
    rss_bytes: int
    fds: int
    threads: int
    python_objects: int
    cl_objects: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        cl_text = " ".join(f"{k}={v}" for k, v in self.cl_objects.items())
        return (
            f"{self.runs:>7} runs {self.seconds:7.1f} s  rss {self.rss_bytes / 2**20:7.1f} MiB  "
            f"fds {self.fds}  threads {self.threads}  py objects {self.python_objects}  cl: {cl_text}"
        )


def sample(runs: int, started: float) -> Sample:
    counts = cl_object_counts()  # collects garbage first, so RSS and counts are comparable
    process = psutil.Process()
    return Sample(
        runs,
        time.perf_counter() - started,
        process.memory_info().rss,
        process.num_fds(),
        process.num_threads(),
        len(gc.get_objects()),
        counts,
    )


def soak(iterations: int, interval: int, device: str = "cpu", report=None) -> list[Sample]:
    """Run the soak model ``iterations`` times; one sample before the first run and one
    every ``interval`` runs. Every output is checked against the first run's."""
    runtime = MaceRuntime(soak_model(), device=device)
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(4)]
    expected = [runtime.run_dict({"x": x}) for x in inputs]
    started = time.perf_counter()
    samples = [sample(0, started)]
    if report:
        report(samples[-1])
    for run in range(1, iterations + 1):
        index = run % len(inputs)
        # A fresh array each time, as an application feeding new data would.
        result = runtime.run_dict({"x": inputs[index].copy()})
        if run % 97 == 0:  # spot-check correctness without dominating the loop
            for name, value in expected[index].items():
                if not np.array_equal(result[name], value):
                    raise AssertionError(f"run {run}: output {name!r} differs from the first run's")
        if run % interval == 0:
            samples.append(sample(run, started))
            if report:
                report(samples[-1])
    return samples


def growth(samples: list[Sample]) -> tuple[int, dict[str, int]]:
    """RSS growth and per-type OpenCL count changes from the end of warm-up (second sample)."""
    base, last = samples[1], samples[-1]
    names = set(base.cl_objects) | set(last.cl_objects)
    changes = {n: last.cl_objects.get(n, 0) - base.cl_objects.get(n, 0) for n in sorted(names)}
    return last.rss_bytes - base.rss_bytes, {n: d for n, d in changes.items() if d}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--interval", type=int, default=2_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-rss-growth-mb", type=float, default=16.0)
    args = parser.parse_args(argv)
    if args.iterations < 2 * args.interval:
        parser.error("--iterations must cover at least two intervals (the first is warm-up)")
    samples = soak(args.iterations, args.interval, args.device, report=lambda s: print(s.line(), flush=True))
    rss, cl_changes = growth(samples)
    runs = samples[-1].runs - samples[1].runs
    seconds = samples[-1].seconds - samples[1].seconds
    print(
        f"after warm-up: {runs} runs in {seconds:.1f} s ({runs / seconds:.0f}/s), rss growth "
        f"{rss / 2**20:+.2f} MiB ({rss / runs:+.1f} bytes/run), OpenCL object changes {cl_changes or 'none'}"
    )
    return 0 if rss <= args.max_rss_growth_mb * 2**20 and not cl_changes else 1


if __name__ == "__main__":
    raise SystemExit(main())
