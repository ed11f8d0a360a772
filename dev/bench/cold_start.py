"""Cold start in fresh processes: compiling from source vs the shipped binary vs a warm cache.

For a MobileNetV2-class model (seeded random weights; the ONNX builder of dev/bench/pocl_latency.py)
or any ONNX file given with --onnx, on the default OpenCL device:

  1. convert it and precompile mace_cl_compiled_program.bin with the same tools the build uses;
  2. start the runtime in fresh processes, each timed from process start to the first output:
       source   no binary: every program compiles;
       shipped  the precompiled file (the point of rules_mace);
       cache    a writable cache directory filled by an earlier process;
     each child gets an empty PoCL compiler cache, so nothing survives between processes
     except what the scenario provides (PoCL would otherwise cache source builds itself);
  3. print per-phase medians and the ratios against "source".

The floor: everything a start does except obtaining programs (interpreter and imports, the
device context, reading the model, planning, constants, one inference), i.e. the "shipped"
row's process time less its programs phase; printed with how close "shipped" comes to it, and
the device context alone (a child that only creates it), the largest part of it on a GPU.

With --model and --compiled, a converted model and a compiled-program file made elsewhere
(e.g. cross-compiled for an NVIDIA GPU with PTX and machine code) are used as they are.

Run: python3 dev/bench/cold_start.py [--onnx MODEL.onnx --input-shape NAME=1,3,224,224] [--repeats 3]
     python3 dev/bench/cold_start.py --model M.mace --compiled B.bin [--name NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).absolute().parent
REPO = HERE.parents[1]
PATHS = [
    str(REPO / "runtime"),
    str(REPO / "tools" / "converter"),
    str(REPO / "tools" / "precompile"),
    str(HERE),
]
sys.path[:0] = PATHS

CHILD = """
import json, sys, time
started = time.perf_counter()
import numpy as np
import mace_cl
model, compiled, cache_dir = sys.argv[1:4]
t_import = time.perf_counter() - started
runtime = mace_cl.MaceRuntime(model, device="any", compiled_program=compiled or None, cache_dir=cache_dir or None)
feeds = {i.name: np.zeros(i.shape, np.float32) for i in runtime.graph.inputs}
t0 = time.perf_counter()
runtime.run_dict(feeds)
first_run = time.perf_counter() - t0
print(json.dumps({"import": t_import, "phases": runtime.init_timings, "first_run": first_run,
                  "origins": runtime.program_origins(), "in_process": time.perf_counter() - started}))
"""


CONTEXT_ONLY = """
import json, sys, time
started = time.perf_counter()
import pyopencl as cl
from mace_cl.execution.device import select_device
device = select_device("any")
context = cl.Context([device])
queue = cl.CommandQueue(context)
queue.finish()
print(json.dumps({"context": time.perf_counter() - started}))
"""


def _env(pocl_cache: Path) -> dict[str, str]:
    inherited = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    return {**os.environ, "PYTHONPATH": os.pathsep.join(PATHS + inherited), "POCL_CACHE_DIR": str(pocl_cache)}


def _start(model: Path, compiled: Path | None, cache_dir: Path | None, work: Path) -> dict:
    pocl_cache = Path(tempfile.mkdtemp(dir=work, prefix="pocl-"))
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(model), str(compiled or ""), str(cache_dir or "")],
        capture_output=True,
        text=True,
        env=_env(pocl_cache),
        check=True,
    )
    wall = time.perf_counter() - started
    report = json.loads(result.stdout.splitlines()[-1])
    report["wall"] = wall
    return report


def _context_only(work: Path) -> float:
    pocl_cache = Path(tempfile.mkdtemp(dir=work, prefix="pocl-"))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", CONTEXT_ONLY], capture_output=True, text=True, env=_env(pocl_cache), check=True
    )
    return time.perf_counter() - started


def _prepare(args: argparse.Namespace, work: Path) -> tuple[Path, Path, str]:
    if args.model:
        return Path(args.model), Path(args.compiled), args.name or Path(args.model).stem
    from mace_cl.model.model_file import write_model
    from mace_cl_converter import convert_model
    from mace_cl_converter.input_shapes import parse_input_shapes

    if args.onnx:
        onnx_path, name = Path(args.onnx), Path(args.onnx).stem
    else:
        import onnx
        from pocl_latency import mobilenet_v2

        onnx_path, name = work / "mobilenet_v2.onnx", "MobileNetV2 (random weights, 224x224)"
        onnx.save(mobilenet_v2(), onnx_path)
    graph = convert_model(onnx_path, parse_input_shapes(args.input_shape))
    model = work / "model.mace"
    write_model(graph, model)
    compiled = work / "mace_cl_compiled_program.bin"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "precompile" / "mace_precompile.py"),
            str(model),
            "-o",
            str(compiled),
        ],
        check=True,
        env=_env(work / "pocl-precompile"),
    )
    return model, compiled, name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", help="an ONNX model instead of the built-in MobileNetV2")
    parser.add_argument("--input-shape", action="append", default=[], help="NAME=D0,D1,... for open dims")
    parser.add_argument("--model", help="a converted model (.mace) to use as it is (needs --compiled)")
    parser.add_argument("--compiled", help="its mace_cl_compiled_program.bin, made elsewhere")
    parser.add_argument("--name", help="the model's name in the printout")
    parser.add_argument(
        "--repeats", type=int, default=3, help="fresh processes per scenario (median reported)"
    )
    args = parser.parse_args(argv)
    if bool(args.model) != bool(args.compiled):
        parser.error("give --model and --compiled together")
    with tempfile.TemporaryDirectory(prefix="mace-cold-start-") as tmp:
        work = Path(tmp)
        model, compiled, name = _prepare(args, work)
        cache = work / "cache"
        _start(model, None, cache, work)  # fills the writable cache for the "cache" scenario
        scenarios = {"source": (None, None), "shipped": (compiled, None), "cache": (None, cache)}
        results: dict[str, list[dict]] = {key: [] for key in scenarios}
        contexts = []
        for _ in range(args.repeats):  # interleaved, so machine noise hits every scenario alike
            for key, (binary, cache_dir) in scenarios.items():
                results[key].append(_start(model, binary, cache_dir, work))
            contexts.append(_context_only(work))

    def median(key: str, pick) -> float:
        return statistics.median(pick(r) for r in results[key])

    print(f"model: {name}; {args.repeats} fresh processes per scenario, medians in ms")
    phases = list(results["source"][0]["phases"])
    header = ["scenario", "programs", "import", *phases, "first run", "process to first output"]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for key in scenarios:
        origins = results[key][0]["origins"]
        cells = [
            key,
            ", ".join(f"{k} {v}" for k, v in sorted(origins.items())),
            f"{median(key, lambda r: r['import']) * 1000:.0f}",
        ]
        cells += [f"{median(key, lambda r, p=p: r['phases'][p]) * 1000:.0f}" for p in phases]
        cells += [
            f"{median(key, lambda r: r['first_run']) * 1000:.0f}",
            f"{median(key, lambda r: r['wall']) * 1000:.0f}",
        ]
        print(" | ".join(cells))
    source_init = median("source", lambda r: r["phases"]["programs"])
    source_wall = median("source", lambda r: r["wall"])
    for key in ("shipped", "cache"):
        print(
            f"{key}: program phase {source_init / median(key, lambda r: r['phases']['programs']):.1f}x faster "
            f"than source; process start to first output {source_wall / median(key, lambda r: r['wall']):.2f}x faster"
        )
    shipped_wall = median("shipped", lambda r: r["wall"])
    floor = statistics.median(r["wall"] - r["phases"]["programs"] for r in results["shipped"])
    print(
        f"floor (process start to first output, programs phase excluded): {floor * 1000:.0f} ms; "
        f"shipped is {shipped_wall / floor:.3f}x the floor"
    )
    print(
        f"device context alone (process start, imports, context and queue): "
        f"{statistics.median(contexts) * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
