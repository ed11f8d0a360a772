"""Validates cross-compiled binaries on a real NVIDIA GPU: loads, runs, agrees, nothing compiles.

Two steps on two machines:

  make DIR [--arch sm_90] [--ptxas PATH] [--kernel-tests]   on the build machine (clang-21,
      libclc-21; no GPU): writes a small CNN (ONNX, converted .mace, input), its cross-compiled
      .bin (PTX, and with --ptxas machine code for --arch too), and with --kernel-tests the
      programs every kernel test uses (found by running the tests on PoCL here) cross-compiled
      into one more .bin.
  check DIR [--model M.mace --compiled B.bin [--onnx M.onnx]]... [--kernel-tests]   on the GPU:
      for each model: a fresh process starts the runtime with the .bin, and every program must
      come from it ("shipped", zero compiled from source); a second fresh process compiles
      everything from source on the same device; outputs are compared with each other and
      with onnxruntime when the ONNX file is there. The .bin relabelled for a GPU newer than
      this one must be refused (all programs from source, same outputs). When the file has
      machine code for this GPU, every program must come from it ("shipped-sass"); relabelled
      as machine code for another architecture it must be passed over for the PTX, and a cubin
      the driver refuses must fall back to the PTX, outputs unchanged. With --kernel-tests, the
      kernel tests run on the GPU with every program served from the cross-compiled file.

Prints one JSON summary on stdout; exit status 0 only if every check passed. The device is
"gpu" unless MACE_TEST_DEVICE names another (as for the kernel tests).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "runtime"), str(REPO / "tools" / "precompile"), str(REPO / "tests" / "models")]

CHILD_PATH = os.pathsep.join(
    filter(
        None,
        [
            str(REPO / "runtime"),
            str(REPO / "tools" / "precompile"),
            str(REPO / "tools" / "converter"),
            str(REPO / "dev" / "gpu"),
            str(REPO / "tests" / "models"),
            os.environ.get("PYTHONPATH", ""),
        ],
    )
)

# Same tolerances as the example's model test: float32 sums in another order, and NVIDIA's
# math library against libclc's (exp, tanh) differ by a few ulp.
RTOL, ATOL = 1e-3, 1e-4

# One start-up in a fresh process (a process reuses programs it built before, which would
# hide where they came from): start-up time, program origins, outputs, steady latency.
RUN_ONCE = r"""
import json, logging, sys, time
import numpy as np
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from mace_cl.execution.engine import MaceRuntime
model, compiled, inputs, outputs, device = sys.argv[1:6]
feeds = dict(np.load(inputs))
started = time.perf_counter()
runtime = MaceRuntime(model, device=device, compiled_program=compiled or None)
created = time.perf_counter()
result = runtime.run_dict(feeds)
first = time.perf_counter()
laps = []
for _ in range(20):
    lap = time.perf_counter(); runtime.run_dict(feeds); laps.append(time.perf_counter() - lap)
np.savez(outputs, **result)
print(json.dumps({"origins": runtime.program_origins(), "create_s": created - started,
                  "first_run_s": first - created, "steady_median_ms": 1000 * sorted(laps)[len(laps) // 2]}))
"""


DEVICE = os.environ.get("MACE_TEST_DEVICE", "gpu")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": CHILD_PATH, "PYTHONUNBUFFERED": "1"}


def _run(argv: list[str], timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=timeout, check=False)


# ---- make (build machine) ------------------------------------------------------------


def _make(args: argparse.Namespace) -> dict:
    out = args.dir.absolute()  # the kernel tests record into it from the repository root
    out.mkdir(parents=True, exist_ok=True)
    import onnx
    from make_small_cnn import build

    onnx_path = out / "small_cnn.onnx"
    onnx.save(build(seed=5), str(onnx_path))
    model_path = out / "small_cnn.mace"
    converted = _run(
        [
            sys.executable,
            str(REPO / "tools/converter/mace_convert.py"),
            str(onnx_path),
            "-o",
            str(model_path),
            "--input-shape",
            "image=2,3,32,32",
        ]
    )
    if converted.returncode != 0:
        raise SystemExit(f"conversion failed:\n{converted.stderr}")
    rng = np.random.default_rng(11)
    np.savez(out / "small_cnn_inputs.npz", image=rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    made = {"model": model_path.name, "onnx": onnx_path.name}
    binary = out / f"small_cnn_{args.arch}.bin"
    ptxas = ["--ptxas", str(args.ptxas)] if args.ptxas else []
    ptxas += [flag for arch in args.sass_arch for flag in ("--sass-arch", arch)]
    compiled = _run(
        [
            sys.executable,
            str(REPO / "tools/precompile/mace_precompile.py"),
            "--target",
            "nvptx",
            "--arch",
            args.arch,
            *ptxas,
            str(model_path),
            "-o",
            str(binary),
        ]
    )
    if compiled.returncode != 0:
        raise SystemExit(f"cross compile failed:\n{compiled.stderr}")
    made["compiled"] = binary.name
    if args.kernel_tests:
        made["kernel_tests"] = _make_kernel_binary(out, args.arch, args.ptxas)
    return made


def _make_kernel_binary(out: Path, arch: str, ptxas_path: Path | None) -> str:
    """Runs the kernel tests on PoCL here to learn their programs, then cross-compiles those."""
    specs_file = out / "kernel_test_programs.json"
    recorded = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "cross_compiled_plugin",
            str(REPO / "kernels" / "tests"),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        env={**_env(), "MACE_CROSS_COMPILED_RECORD": str(specs_file), "MACE_TEST_DEVICE": "cpu"},
        cwd=REPO,
    )
    if recorded.returncode != 0 or not specs_file.exists():
        raise SystemExit(
            f"recording the kernel tests' programs failed:\n{recorded.stdout[-3000:]}{recorded.stderr[-3000:]}"
        )
    from mace_cl.model.program_file import CompiledProgramSet, write_compiled_programs
    from mace_cl.planning.program_spec import ProgramSpec
    from mace_cl_precompiler import cross, nvptx, ptxas

    specs = [ProgramSpec(name, tuple(options)) for name, options in json.loads(specs_file.read_text())]
    target = nvptx.NvptxTarget(arch, cross.find_llvm_tools())
    programs = CompiledProgramSet(metadata={"purpose": "kernel tests"})
    compiled = nvptx.compile_programs(target, sorted(specs, key=lambda s: s.key), jobs=os.cpu_count() or 2)
    results = [(target.identity, compiled)]
    if ptxas_path:
        results.append(
            nvptx.assemble_programs(
                target, ptxas.find_ptxas(ptxas_path), arch, compiled, jobs=os.cpu_count() or 2
            )
        )
    for identity, items in results:
        for item in items:
            programs.add(identity, item.program)
    name = f"kernel_tests_{arch}.bin"
    write_compiled_programs(programs, out / name)
    return name


# ---- check (GPU machine) ---------------------------------------------------------------


def _device_summary() -> dict:
    from mace_cl.execution.device import device_identity, nvidia_compute_capability, select_device

    device = select_device(DEVICE)  # the one the children use
    return {
        "identity": device_identity(device).to_json(),
        "compute_capability": nvidia_compute_capability(device),
    }


def _start(model: Path, compiled: Path | None, inputs: Path, work: Path, label: str) -> tuple[dict, dict]:
    outputs = work / f"{label}.npz"
    result = _run(
        [sys.executable, "-c", RUN_ONCE, str(model), str(compiled or ""), str(inputs), str(outputs), DEVICE]
    )
    if result.returncode != 0:
        return {"error": result.stderr[-4000:]}, {}
    run = json.loads(result.stdout.strip().splitlines()[-1])
    run["warnings"] = [line for line in result.stderr.splitlines() if line.strip()][:5]
    return run, dict(np.load(outputs))


def _max_diff(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a) if a and b else float("inf")


def _close(a: dict, b: dict) -> bool:
    return bool(a) and a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=RTOL, atol=ATOL) for k in a)


def _too_new(compiled: Path, capability: tuple[int, int], target: Path) -> Path:
    """The same binaries, labelled as PTX for the architecture after this GPU's."""
    from mace_cl.model.program_file import (
        CompiledProgramSet,
        encode_compiled_programs,
        read_compiled_programs,
    )
    from mace_cl.targets.nvidia import nvptx_identity, nvptx_target_capability

    programs = read_compiled_programs(compiled)
    relabelled = CompiledProgramSet(metadata=programs.metadata)
    for identity, by_key in programs.devices.items():
        if nvptx_target_capability(identity) is None:
            continue
        clang, _, _, libclc = identity.compiler.split()
        newer = nvptx_identity(f"sm_{capability[0] + 1}0", clang.removeprefix("clang-"), libclc)
        for program in by_key.values():
            relabelled.add(newer, program)
    target.write_bytes(encode_compiled_programs(relabelled))
    return target


def _relabel_sass(compiled: Path, target: Path, take_arch: str, as_arch: str) -> Path | None:
    """PTX kept, and the cubins of ``take_arch`` recorded as machine code for ``as_arch``."""
    from mace_cl.model.program_file import (
        CompiledProgramSet,
        DeviceIdentity,
        encode_compiled_programs,
        read_compiled_programs,
    )
    from mace_cl.targets.nvidia import nvidia_sass_capability

    programs = read_compiled_programs(compiled)
    relabelled = CompiledProgramSet(metadata=programs.metadata)
    found = False
    for identity, by_key in programs.devices.items():
        if nvidia_sass_capability(identity) is None:
            for program in by_key.values():
                relabelled.add(identity, program)
        elif identity.device_name == take_arch:
            parts = identity.compiler.split()
            label = DeviceIdentity(
                identity.platform_name, "", as_arch, "", "", " ".join([*parts[:6], as_arch])
            )
            for program in by_key.values():
                relabelled.add(label, program)
            found = True
    if not found:
        return None
    target.write_bytes(encode_compiled_programs(relabelled))
    return target


def _check_machine_code(
    model: Path, compiled: Path, inputs: Path, source_out: dict, capability: tuple[int, int], work: Path
) -> tuple[dict, dict]:
    """Cubins for another architecture are passed over, and cubins the driver refuses fall back."""
    own = f"sm_{capability[0]}{capability[1]}"
    checks, report = {}, {}
    other = _relabel_sass(compiled, work / f"{model.stem}_other_arch.bin", own, f"sm_{capability[0] - 1}0")
    if other is not None:
        run, out = _start(model, other, inputs, work, f"{model.stem}_other_arch")
        checks["cubin_for_other_arch_uses_ptx"] = set(run.get("origins", {})) == {"shipped-ptx"} and _close(
            out, source_out
        )
        report["cubin_for_other_arch"] = run
    newer = f"sm_{capability[0] + 1}0"
    refused = _relabel_sass(compiled, work / f"{model.stem}_refused.bin", newer, own)
    if refused is not None:
        run, out = _start(model, refused, inputs, work, f"{model.stem}_refused_cubin")
        checks["refused_cubin_falls_back_to_ptx"] = set(run.get("origins", {})) == {"shipped-ptx"} and _close(
            out, source_out
        )
        report["refused_cubin"] = run
    return checks, report


def _check_model(
    model: Path,
    compiled: Path,
    onnx_path: Path | None,
    inputs: Path | None,
    capability: tuple[int, int] | None,
    work: Path,
) -> dict:
    from mace_cl.model.model_file import read_model

    if inputs is None:
        graph = read_model(model).graph
        rng = np.random.default_rng(7)
        inputs = work / f"{model.stem}_inputs.npz"
        np.savez(inputs, **{i.name: rng.standard_normal(i.shape).astype(np.float32) for i in graph.inputs})
    shipped, shipped_out = _start(model, compiled, inputs, work, f"{model.stem}_shipped")
    source, source_out = _start(model, None, inputs, work, f"{model.stem}_source")
    report = {"model": model.name, "compiled": compiled.name, "shipped": shipped, "source": source}
    checks = {
        "ran": "error" not in shipped and "error" not in source,
        "zero_compiled_from_source": shipped.get("origins", {}).get("source", 0) == 0
        and bool(shipped.get("origins")),
        "matches_source_build": _close(shipped_out, source_out),
    }
    report["max_abs_diff_vs_source_build"] = _max_diff(shipped_out, source_out)
    if onnx_path is not None and onnx_path.exists():
        try:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
            feeds = dict(np.load(inputs))
            names = [o.name for o in session.get_outputs()]
            reference = dict(zip(names, session.run(names, feeds), strict=True))
            checks["matches_onnxruntime"] = _close(shipped_out, reference)
            report["max_abs_diff_vs_onnxruntime"] = _max_diff(shipped_out, reference)
        except ImportError:
            report["onnxruntime"] = "not installed"
    if capability is not None and checks["ran"]:
        from mace_cl.model.program_file import read_compiled_programs
        from mace_cl.targets.nvidia import nvidia_sass_capability

        if any(
            nvidia_sass_capability(identity) == capability
            for identity in read_compiled_programs(compiled).devices
        ):
            checks["served_from_machine_code"] = set(shipped.get("origins", {})) == {"shipped-sass"}
            more_checks, more = _check_machine_code(model, compiled, inputs, source_out, capability, work)
            checks.update(more_checks)
            report.update(more)
        newer = _too_new(compiled, capability, work / f"{model.stem}_too_new.bin")
        refused, refused_out = _start(model, newer, inputs, work, f"{model.stem}_too_new")
        checks["ptx_for_newer_gpu_refused"] = set(refused.get("origins", {})) == {"source"} and _close(
            refused_out, source_out
        )
        report["too_new"] = refused
    report["checks"] = checks
    return report


def _check_kernel_tests(binary: Path, work: Path) -> dict:
    report_path = work / "kernel_tests_report.json"
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "cross_compiled_plugin",
            str(REPO / "kernels" / "tests"),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        cwd=REPO,
        env={
            **_env(),
            "MACE_CROSS_COMPILED": str(binary),
            "MACE_CROSS_COMPILED_REPORT": str(report_path),
            "MACE_TEST_DEVICE": DEVICE,
        },
    )
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["pytest_tail"] = result.stdout.strip().splitlines()[-3:]
    report["checks"] = {
        "passed": result.returncode == 0,
        "zero_compiled_from_source": not report.get("compiled_from_source"),
    }
    if result.returncode != 0:
        report["failures"] = [
            line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))
        ][:30]
    return report


def _check(args: argparse.Namespace) -> dict:
    summary: dict = {"device": _device_summary(), "models": []}
    capability = summary["device"]["compute_capability"]
    capability = tuple(capability) if capability else None
    cases = []
    made = args.dir / "made.json" if args.dir else None
    if made and made.exists():
        info = json.loads(made.read_text())
        cases.append(
            (
                args.dir / info["model"],
                args.dir / info["compiled"],
                args.dir / info["onnx"],
                args.dir / "small_cnn_inputs.npz",
            )
        )
    for index, model in enumerate(args.model or []):
        onnx_path = args.onnx[index] if args.onnx and index < len(args.onnx) else None
        cases.append((model, args.compiled[index], onnx_path, None))
    with tempfile.TemporaryDirectory(prefix="check_cross_") as work:
        for model, compiled, onnx_path, inputs in cases:
            summary["models"].append(_check_model(model, compiled, onnx_path, inputs, capability, Path(work)))
        if args.kernel_tests:
            info = json.loads(made.read_text()) if made and made.exists() else {}
            if "kernel_tests" not in info:
                raise SystemExit("--kernel-tests needs DIR made with 'make DIR --kernel-tests'")
            summary["kernel_tests"] = _check_kernel_tests(args.dir / info["kernel_tests"], Path(work))
    checks = [c for m in summary["models"] for c in m["checks"].values()]
    checks += list(summary.get("kernel_tests", {}).get("checks", {}).values())
    summary["all_passed"] = bool(checks) and all(checks)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make", help="build the artifacts (build machine, needs clang-21 + libclc)")
    make.add_argument("dir", type=Path)
    make.add_argument("--arch", default="sm_90")
    make.add_argument("--ptxas", type=Path, help="also assemble machine code with this ptxas")
    make.add_argument(
        "--sass-arch",
        action="append",
        default=[],
        help="with --ptxas: an architecture to assemble for (repeatable; default: --arch)",
    )
    make.add_argument(
        "--kernel-tests", action="store_true", help="also cross-compile every kernel test's programs"
    )
    check = commands.add_parser("check", help="validate on the NVIDIA GPU")
    check.add_argument("dir", type=Path, nargs="?", help="a directory from 'make'")
    check.add_argument("--model", type=Path, action="append", help="a .mace file (repeatable)")
    check.add_argument(
        "--compiled", type=Path, action="append", help="its cross-compiled .bin (one per --model)"
    )
    check.add_argument(
        "--onnx", type=Path, action="append", help="its ONNX file, for onnxruntime as an oracle"
    )
    check.add_argument(
        "--kernel-tests", action="store_true", help="run kernels/tests from the cross-compiled file"
    )
    args = parser.parse_args(argv)
    if args.command == "make":
        made = _make(args)
        (args.dir / "made.json").write_text(json.dumps(made, indent=2) + "\n")
        print(json.dumps(made, indent=2))
        return 0
    if len(args.model or []) != len(args.compiled or []):
        parser.error("give one --compiled per --model")
    summary = _check(args)
    print(json.dumps(summary, indent=2, default=str))
    return 0 if summary["all_passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
