"""mace_precompile: compile the OpenCL programs a model needs into mace_cl_compiled_program.bin.

The program list comes from the runtime's own planner (mace_cl.planning.planner), so the file holds
exactly what the runtime will ask for on start-up.

Targets: ``driver`` (default) builds with an OpenCL device's own driver on this machine;
``nvptx`` cross-compiles PTX for NVIDIA GPUs of an architecture (``--arch sm_90``) with
clang and libclc, and with ``--ptxas`` also assembles it into machine code (cubins) for
``--sass-arch`` (default: ``--arch``); it needs no OpenCL device at all.

Tuned local sizes (docs/caching.md): ``--tune`` times candidates on the driver target's device
and stores the winners in the file; ``--tuning FILE`` embeds sizes tuned earlier on the device
(any target); ``--tune-output FILE`` writes the measured sizes to a tuning file (without
``--output``: only that).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mace_cl.model.container import FormatError
from mace_cl.model.graph import Graph, GraphError
from mace_cl.model.model_file import read_model
from mace_cl.model.program_file import CompiledProgramSet, DeviceIdentity, write_compiled_programs
from mace_cl.model.tuning_file import TuningTable, read_tuning, write_tuning
from mace_cl.planning.ops.base import OpError
from mace_cl.planning.planner import plan_graph, required_programs
from mace_cl.planning.program_spec import ProgramSpec
from mace_cl.targets.nvidia import parse_nvptx_arch, tf32_mma_capable

from mace_cl_precompiler.common import CompiledSpec, PrecompileError
from mace_cl_precompiler.pocl_binaries import use_private_cache

if TYPE_CHECKING:
    from mace_cl.execution.device import DeviceEntry

# The driver target's modules open OpenCL devices; they are imported only when used, so a
# cross compile never touches a device or an OpenCL driver (e.g. on a remote executor).
TARGETS = ("driver", "nvptx")
# Plans depend on the device kind (mace_cl.execution.device.device_kind), whether
# DEVICE_FENCE orders stores device-wide (PlanContext.device_fence) and whether the device
# has TF32 tensor cores (PlanContext.tf32_mma): NVIDIA's OpenCL devices are GPUs, the
# cross-compiled PTX's DEVICE_FENCE is membar.gl, and --arch says the architecture.
NVPTX_DEVICE_KIND = "gpu"
NVPTX_DEVICE_FENCE = True


@dataclass(frozen=True)
class PlannedDevice:
    """What the runtime plans by (plan_graph's arguments), for the device built for."""

    kind: str
    fence: bool
    tf32_mma: bool


def _nvptx_device(arch: str) -> PlannedDevice:
    capability = parse_nvptx_arch(arch)
    return PlannedDevice(
        NVPTX_DEVICE_KIND, NVPTX_DEVICE_FENCE, capability is not None and tf32_mma_capable(capability)
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mace_precompile", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="model files (.mace) from mace_convert")
    parser.add_argument("-o", "--output", type=Path, help="where to write mace_cl_compiled_program.bin")
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="driver",
        help="driver: build with this machine's OpenCL device (default); "
        "nvptx: cross-compile PTX for NVIDIA GPUs (needs --arch, no device)",
    )
    parser.add_argument("--arch", help="nvptx: the oldest GPU architecture to run on, e.g. sm_80 or sm_90")
    parser.add_argument(
        "--llvm-version",
        default=None,
        metavar="MAJOR",
        help="nvptx: LLVM release whose tools to run (clang-MAJOR, llc-MAJOR, libclc; default: 21)",
    )
    parser.add_argument(
        "--expect-compiler",
        metavar="VERSION",
        help="nvptx: fail unless clang reports exactly this version (e.g. 21.1.8), so a build "
        "keyed by the toolchain's declared version never runs another compiler",
    )
    parser.add_argument(
        "--ptxas",
        type=Path,
        help="nvptx: ptxas to assemble machine code with (the file then holds cubins and PTX)",
    )
    parser.add_argument(
        "--expect-ptxas",
        metavar="VERSION",
        help="nvptx: fail unless ptxas reports exactly this version (e.g. 13.5.37)",
    )
    parser.add_argument(
        "--sass-arch",
        action="append",
        default=[],
        metavar="ARCH",
        help="nvptx with --ptxas: an architecture to assemble cubins for (repeatable; "
        "default: --arch). Each must be --arch or newer.",
    )
    parser.add_argument(
        "--device",
        default="any",
        help='OpenCL device: "cpu", "gpu", "any" or "<platform>:<device>" (default: any)',
    )
    parser.add_argument("--jobs", type=int, default=2, help="programs compiled at once (default: 2)")
    parser.add_argument(
        "--capture-launches",
        choices=["auto", "yes", "no"],
        default="auto",
        help="run the model once before reading binaries, so work-group code that some "
        "drivers compile at the first launch is shipped too (auto: on PoCL)",
    )
    parser.add_argument("--list", action="store_true", help="print the planned programs as JSON and exit")
    parser.add_argument(
        "--expect-identity",
        type=Path,
        metavar="JSON",
        help="fail unless the chosen device has exactly this identity (from the OpenCL probe)",
    )
    parser.add_argument("--report", type=Path, help="also write per-program compile times as JSON here")
    parser.add_argument(
        "--tuning",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="embed the local sizes of this tuning file (from --tune-output on the device; repeatable)",
    )
    parser.add_argument(
        "--tune",
        action="store_true",
        help="driver: time candidate local sizes on the device and embed the fastest (not reproducible)",
    )
    parser.add_argument(
        "--tune-output",
        type=Path,
        metavar="FILE",
        help="driver: tune, and write the sizes to this tuning file",
    )
    parser.add_argument(
        "--tune-candidates",
        type=int,
        default=30,
        metavar="N",
        help="local sizes timed per kernel (default: 30)",
    )
    parser.add_argument(
        "--tune-seconds",
        type=float,
        default=None,
        metavar="S",
        help="per model, start no new kernel's tuning after S seconds (default: no limit)",
    )
    args = parser.parse_args(argv)
    if not args.list and args.output is None and args.tune_output is None:
        parser.error("give --output (or --list to only print the plan, or --tune-output to only tune)")
    if args.target != "driver" and (args.tune or args.tune_output):
        parser.error(
            "--tune and --tune-output time kernels on an OpenCL device (--target driver); for a cross "
            "compile, tune on the device and pass the file with --tuning"
        )
    if args.tune_candidates < 1:
        parser.error("--tune-candidates must be at least 1")
    if args.target == "nvptx" and not args.arch:
        parser.error("--target nvptx needs --arch (e.g. --arch sm_90)")
    cross_only = (
        args.arch,
        args.llvm_version,
        args.expect_compiler,
        args.ptxas,
        args.expect_ptxas,
        args.sass_arch,
    )
    if args.target == "driver" and any(cross_only):
        parser.error(
            "--arch, --llvm-version, --expect-compiler, --ptxas, --expect-ptxas and --sass-arch are for "
            "cross-compiling targets (--target nvptx)"
        )
    if (args.expect_ptxas or args.sass_arch) and not args.ptxas:
        parser.error("--expect-ptxas and --sass-arch need --ptxas")
    if args.target != "driver" and (args.expect_identity or args.capture_launches == "yes"):
        parser.error("--expect-identity and --capture-launches are for the driver target")
    return args


def _planned_programs(
    models: list[Path], device: PlannedDevice
) -> tuple[list[ProgramSpec], dict[str, str], list[Graph]]:
    specs: set[ProgramSpec] = set()
    digests = {}
    graphs = []
    for path in models:
        model = read_model(path)
        specs.update(
            required_programs(
                model.graph, device_kind=device.kind, device_fence=device.fence, tf32_mma=device.tf32_mma
            )
        )
        digests[f"model_digest:{path.name}"] = model.digest
        graphs.append(model.graph)
    return sorted(specs, key=lambda spec: spec.key), digests, graphs


POCL_PLATFORM_NAME = "Portable Computing Language"


def _check_identity(expected_path: Path, actual: DeviceIdentity) -> None:
    """Binaries are only valid for the device they were built on: refuse to build for another."""
    try:
        expected = DeviceIdentity.from_json(
            json.loads(expected_path.read_text(encoding="utf-8")), str(expected_path)
        )
    except (OSError, ValueError) as exc:
        raise PrecompileError(f"cannot read the expected device identity {expected_path}: {exc}") from None
    if expected != actual:
        raise PrecompileError(
            f"this build runs on OpenCL device {actual.describe()}, but the OpenCL toolchain was "
            f"probed for {expected.describe()} ({expected_path}). Re-probe after a driver or "
            "hardware change: tools/bazel fetch --force --configure @rules_mace_opencl//..."
        )


def _driver_device(args: argparse.Namespace) -> tuple[DeviceEntry, PlannedDevice]:
    """The OpenCL device to build with, and what the runtime plans by on it."""
    # A compiler cache of this run's own, chosen before the OpenCL library loads (PoCL reads it
    # then; spawned workers inherit it): build actions share no state, and binaries record a
    # fixed path instead of it.
    use_private_cache()
    from mace_cl.execution.device import (
        DeviceSelectionError,
        device_kind,
        has_device_fence,
        has_tf32_mma,
        list_devices,
        select_device,
    )

    try:
        entries = list_devices()
        chosen = select_device(args.device, entries)
    except DeviceSelectionError as exc:
        raise PrecompileError(str(exc)) from None
    entry = next(e for e in entries if e.device.int_ptr == chosen.int_ptr)
    return entry, PlannedDevice(device_kind(chosen), has_device_fence(chosen), has_tf32_mma(chosen))


def _tuning(args: argparse.Namespace, device: DeviceEntry | None) -> TuningTable:
    """The tuning files' sizes, then (winning) any measured here."""
    table = TuningTable()
    for path in args.tuning:
        table = table.merged(read_tuning(path))
    if device is not None and (args.tune or args.tune_output):
        from mace_cl_precompiler.tune import TuneSettings, tune_on_device

        settings = TuneSettings(max_candidates=args.tune_candidates, max_seconds=args.tune_seconds)
        measured, lines = tune_on_device(
            list(args.models), f"{device.platform_index}:{device.device_index}", settings
        )
        for line in lines:
            print(f"mace_precompile: tuning {line}", file=sys.stderr)
        if args.tune_output is not None:
            write_tuning(measured, args.tune_output)
            print(f"mace_precompile: tuned local sizes -> {args.tune_output}", file=sys.stderr)
        table = table.merged(measured)
    return table


def _compile_with_driver(
    args: argparse.Namespace,
    device: DeviceEntry,
    specs: list[ProgramSpec],
    graphs: list[Graph],
    tuning: TuningTable,
) -> tuple[DeviceIdentity, list[CompiledSpec]]:
    from mace_cl.execution.device import device_identity

    from mace_cl_precompiler.compile import compile_and_capture_launches, compile_programs

    capture = args.capture_launches == "yes" or (
        args.capture_launches == "auto" and device.platform_name == POCL_PLATFORM_NAME
    )
    if capture:
        # With the tuned sizes: the work-group code shipped is that of the launches that will run.
        return device_identity(device.device), compile_and_capture_launches(graphs, device, tuning)
    return compile_programs(specs, device, jobs=args.jobs)


def launched_kernels(graphs: list[Graph], device: PlannedDevice) -> dict[ProgramSpec, set[str]]:
    """Per program, the kernels the runtime's plans launch by name."""
    launched: dict[ProgramSpec, set[str]] = {}
    for graph in graphs:
        planned = plan_graph(
            graph, device_kind=device.kind, device_fence=device.fence, tf32_mma=device.tf32_mma
        )
        for plan in planned.node_plans:
            for launch in plan.launches:
                launched.setdefault(launch.program, set()).add(launch.kernel)
    return launched


def _cross_compile_nvptx(
    args: argparse.Namespace, specs: list[ProgramSpec], graphs: list[Graph]
) -> list[tuple[DeviceIdentity, list[CompiledSpec]]]:
    from mace_cl_precompiler import cross, nvptx, ptxas

    tools = cross.find_llvm_tools(args.llvm_version or cross.DEFAULT_LLVM_MAJOR)
    if args.expect_compiler and tools.version != args.expect_compiler:
        raise PrecompileError(
            f"the OpenCL toolchain declares clang {args.expect_compiler}, but clang-{tools.major} here is "
            f"{tools.version}; update the toolchain's compiler_version (it keys cached results) or the tools"
        )
    target = nvptx.NvptxTarget(args.arch, tools)
    compiled = nvptx.compile_programs(target, specs, jobs=args.jobs)
    # Belt and braces over nvptx's own check: every kernel a plan launches by name is a real
    # entry of its program's PTX, so no launch can reach an empty stub.
    binaries = {item.spec: item.program.binary for item in compiled}
    for spec, kernels in sorted(
        launched_kernels(graphs, _nvptx_device(args.arch)).items(), key=lambda item: item[0].key
    ):
        entries = set(nvptx.ptx_kernel_names(binaries[spec]))
        missing = sorted(kernels - entries)
        if missing:
            raise PrecompileError(f"program {spec.key!r}: launched kernels {missing} are not PTX entries")
    results = [(target.identity, compiled)]
    if args.ptxas:
        assembler = ptxas.find_ptxas(args.ptxas)
        if args.expect_ptxas and assembler.version != args.expect_ptxas:
            raise PrecompileError(
                f"the OpenCL toolchain declares ptxas {args.expect_ptxas}, but {args.ptxas} is {assembler.version}; "
                "update the toolchain's ptxas_version (it keys cached results) or the tool"
            )
        for arch in args.sass_arch or [args.arch]:
            results.append(nvptx.assemble_programs(target, assembler, arch, compiled, jobs=args.jobs))
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        device = None
        if args.target == "nvptx":
            planned = _nvptx_device(args.arch)
        else:
            device, planned = _driver_device(args)
        specs, digests, graphs = _planned_programs(args.models, planned)
        if args.list:
            json.dump(
                [{"program": s.name, "options": list(s.options), "key": s.key} for s in specs],
                sys.stdout,
                indent=2,
            )
            sys.stdout.write("\n")
            return 0
        started = time.perf_counter()
        if device is not None and args.expect_identity is not None:
            from mace_cl.execution.device import device_identity

            _check_identity(args.expect_identity, device_identity(device.device))
        tuning = _tuning(args, device)
        if args.output is None:  # --tune-output alone
            return 0
        if device is None:
            results = _cross_compile_nvptx(args, specs, graphs)
        else:
            results = [_compile_with_driver(args, device, specs, graphs, tuning)]
        identity, compiled = results[0]
        programs = CompiledProgramSet(metadata=digests, tuning=tuning)
        for each_identity, each_compiled in results:
            for item in each_compiled:
                programs.add(each_identity, item.program)
    except (FormatError, GraphError, OpError, PrecompileError) as exc:
        print(f"mace_precompile: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an input that vanished, a private temporary folder refused
        print(f"mace_precompile: error: {exc.filename or 'a file'}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        digest = write_compiled_programs(programs, args.output)
    except OSError as exc:  # the output's folder is missing or read-only, the disk full, ...
        print(
            f"mace_precompile: error: cannot write {exc.filename or args.output}: {exc.strerror or exc}; "
            "give -o a path in an existing, writable folder",
            file=sys.stderr,
        )
        return 2
    elapsed = time.perf_counter() - started
    also = "".join(f", machine code for {other.device_name}" for other, _ in results[1:])
    print(
        f"mace_precompile: {len(compiled)} programs for {identity.describe()}{also} in {elapsed:.1f} s "
        f"-> {args.output} (sha256 {digest[:16]})",
        file=sys.stderr,
    )
    if args.report:
        report = {
            "device": identity.to_json(),
            "seconds": elapsed,
            "digest": digest,
            "programs": [
                {"key": c.spec.key, "seconds": round(c.seconds, 4), "bytes": len(c.program.binary)}
                for c in compiled
            ],
            "machine_code": {
                other.device_name: [
                    {"key": c.spec.key, "seconds": round(c.seconds, 4), "bytes": len(c.program.binary)}
                    for c in assembled
                ]
                for other, assembled in results[1:]
            },
        }
        try:
            args.report.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            print(
                f"mace_precompile: error: cannot write the report {args.report}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
