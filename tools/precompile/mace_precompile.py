"""mace_precompile: compile the OpenCL programs a model needs into mace_cl_compiled_program.bin.

The program list comes from the runtime's own planner (mace.planner), so the file holds
exactly what the runtime will ask for on start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# PoCL embeds its cache directory in every binary; one fixed path keeps binaries identical
# across runs and machines. It must be set before the OpenCL library loads.
# RULES_MACE_POCL_CACHE_DIR overrides the path (tests use it to force fresh compiles).
os.environ["POCL_CACHE_DIR"] = os.environ.get(
    "RULES_MACE_POCL_CACHE_DIR", os.path.join(tempfile.gettempdir(), "rules_mace_pocl_cache")
)

from mace.device import DeviceSelectionError, list_devices, select_device
from mace.formats import CompiledProgramSet, DeviceIdentity, FormatError, read_model, write_compiled_programs
from mace.graph import Graph, GraphError
from mace.ops.base import OpError
from mace.planner import required_programs
from mace.program_store import device_identity
from mace.programs import ProgramSpec
from mace_precompiler.compile import (
    PrecompileError,
    add_to_set,
    compile_and_capture_launches,
    compile_programs,
)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mace_precompile", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="model files (.mace) from mace_convert")
    parser.add_argument("-o", "--output", type=Path, help="where to write mace_cl_compiled_program.bin")
    parser.add_argument("--device", default="any",
                        help='OpenCL device: "cpu", "gpu", "any" or "<platform>:<device>" (default: any)')
    parser.add_argument("--jobs", type=int, default=2, help="programs compiled at once (default: 2)")
    parser.add_argument("--capture-launches", choices=["auto", "yes", "no"], default="auto",
                        help="run the model once before reading binaries, so work-group code that some "
                             "drivers compile at the first launch is shipped too (auto: on PoCL)")
    parser.add_argument("--list", action="store_true", help="print the planned programs as JSON and exit")
    parser.add_argument("--expect-identity", type=Path, metavar="JSON",
                        help="fail unless the chosen device has exactly this identity (from the OpenCL probe)")
    parser.add_argument("--report", type=Path, help="also write per-program compile times as JSON here")
    args = parser.parse_args(argv)
    if not args.list and args.output is None:
        parser.error("give --output (or --list to only print the plan)")
    return args


def _planned_programs(models: list[Path]) -> tuple[list[ProgramSpec], dict[str, str], list[Graph]]:
    specs: set[ProgramSpec] = set()
    digests = {}
    graphs = []
    for path in models:
        model = read_model(path)
        specs.update(required_programs(model.graph))
        digests[f"model_digest:{path.name}"] = model.digest
        graphs.append(model.graph)
    return sorted(specs, key=lambda spec: spec.key), digests, graphs


POCL_PLATFORM_NAME = "Portable Computing Language"


def _check_identity(expected_path: Path, actual: DeviceIdentity) -> None:
    """Binaries are only valid for the device they were built on: refuse to build for another."""
    try:
        expected = DeviceIdentity.from_json(json.loads(expected_path.read_text(encoding="utf-8")), str(expected_path))
    except (OSError, ValueError) as exc:
        raise PrecompileError(f"cannot read the expected device identity {expected_path}: {exc}") from None
    if expected != actual:
        raise PrecompileError(
            f"this build runs on OpenCL device {actual.describe()}, but the OpenCL toolchain was "
            f"probed for {expected.describe()} ({expected_path}). Re-probe after a driver or "
            "hardware change: tools/bazel fetch --force --configure @rules_mace_opencl//..."
        )


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        specs, digests, graphs = _planned_programs(args.models)
        if args.list:
            json.dump([{"program": s.name, "options": list(s.options), "key": s.key} for s in specs],
                      sys.stdout, indent=2)
            sys.stdout.write("\n")
            return 0
        entries = list_devices()
        chosen = select_device(args.device, entries)
        device = next(e for e in entries if e.device.int_ptr == chosen.int_ptr)
        if args.expect_identity is not None:
            _check_identity(args.expect_identity, device_identity(device.device))
        started = time.perf_counter()
        capture = args.capture_launches == "yes" or (
            args.capture_launches == "auto" and device.platform_name == POCL_PLATFORM_NAME)
        if capture:
            identity, compiled = device_identity(device.device), compile_and_capture_launches(graphs, device)
        else:
            identity, compiled = compile_programs(specs, device, jobs=args.jobs)
        programs = CompiledProgramSet(metadata=digests)
        add_to_set(programs, identity, compiled)
        digest = write_compiled_programs(programs, args.output)
    except (FormatError, GraphError, OpError, DeviceSelectionError, PrecompileError) as exc:
        print(f"mace_precompile: error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print(f"mace_precompile: {len(compiled)} programs for {identity.describe()} in {elapsed:.1f} s "
          f"-> {args.output} (sha256 {digest[:16]})", file=sys.stderr)
    if args.report:
        report = {"device": identity.to_json(), "seconds": elapsed, "digest": digest,
                  "programs": [{"key": c.spec.key, "seconds": round(c.seconds, 4), "bytes": len(c.program.binary)}
                               for c in compiled]}
        args.report.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
