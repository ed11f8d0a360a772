"""Compiles a set of OpenCL programs for one device and collects their binaries.

Measured on PoCL: the first program a process compiles comes out with different bytes
than the same program compiled later in that process, and threads gain nothing because
builds serialise inside the driver. So every worker is a separate process that first
compiles a throw-away program, then compiles its share one by one; results are put back
in the planned order. Same inputs, same bytes, whatever the number of workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pyopencl as cl
from mace_cl.execution.device import DeviceEntry, device_identity, list_devices, shared_context
from mace_cl.execution.engine import MaceRuntime
from mace_cl.execution.program_store import BinaryRefused, build_from_binary, program_binary
from mace_cl.execution.programs import ProgramBuildError, build_program
from mace_cl.model.graph import Graph
from mace_cl.model.program_file import (
    CompiledProgram,
    DeviceIdentity,
    program_source_hash,
)
from mace_cl.model.tuning_file import TuningTable
from mace_cl.planning.kernel_sources import program_source
from mace_cl.planning.program_spec import ProgramSpec
from mace_cl.targets.pocl_binary import is_pocl_binary, pocl_binary_problem

from mace_cl_precompiler.common import CompiledSpec, PrecompileError
from mace_cl_precompiler.pocl_binaries import normalize_pocl_binary

log = logging.getLogger("mace_precompile")

_PRIMER = "__kernel void rules_mace_primer(__global float *x) { x[get_global_id(0)] += 1.0f; }"


class _Compiler:
    """One device context in one process, primed so every build is a 'later' build."""

    def __init__(self, device: cl.Device) -> None:
        self.device = device
        self.context = cl.Context([device])
        build_program(self.context, _PRIMER, (), [device])

    def compile(self, spec: ProgramSpec) -> CompiledSpec:
        source = program_source(spec.name)
        start = time.perf_counter()
        try:
            program = build_program(self.context, source, spec.options, [self.device])
        except ProgramBuildError as exc:
            raise PrecompileError(
                f"OpenCL program {spec.key!r} does not compile for {self.device.name.strip()}:\n{exc}"
            ) from None
        binary = _reproducible(self.context, self.device, spec, program_binary(program, self.device))
        seconds = time.perf_counter() - start
        return CompiledSpec(
            spec, CompiledProgram(spec.key, program_source_hash(source, spec.options), binary), seconds
        )


_worker: _Compiler | None = None


def _find_device(platform_index: int, device_index: int) -> cl.Device:
    for entry in list_devices():
        if (entry.platform_index, entry.device_index) == (platform_index, device_index):
            return entry.device
    raise PrecompileError(f"OpenCL device {platform_index}:{device_index} disappeared")


def _start_worker(platform_index: int, device_index: int) -> None:
    global _worker
    _worker = _Compiler(_find_device(platform_index, device_index))


def _compile_in_worker(spec: ProgramSpec) -> CompiledSpec:
    assert _worker is not None
    return _worker.compile(spec)


def compile_programs(
    specs: Sequence[ProgramSpec], device: DeviceEntry, jobs: int = 2
) -> tuple[DeviceIdentity, list[CompiledSpec]]:
    """Builds every spec from source for ``device``; results come in the order of ``specs``."""
    identity = device_identity(device.device)
    # Worker start-up (~0.5 s each) only pays off for more than a handful of programs.
    workers = max(1, min(jobs, len(specs) // 4))
    if workers == 1:
        compiler = _Compiler(device.device)
        return identity, [compiler.compile(spec) for spec in specs]
    # "spawn": a forked child would inherit the parent's OpenCL state, which is not fork-safe.
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(device.platform_index, device.device_index),
    ) as pool:
        return identity, list(pool.map(_compile_in_worker, specs))


def compile_and_capture_launches(
    graphs: Sequence[Graph], device: DeviceEntry, tuning: TuningTable | None = None
) -> list[CompiledSpec]:
    """Builds every program the graphs need from source, runs each graph once, then takes binaries.

    Some drivers (PoCL) compile work-group code for each launch configuration at the first
    enqueue and include it in a program's binary only if the program ran before its binary
    was first read. Running the real launches here moves that compilation into the build too.
    Serial by necessity: one process must build, run and read every program.
    """
    context = shared_context(device.device)
    build_program(context, _PRIMER, (), [device.device])
    runtimes = [
        MaceRuntime(graph, device=f"{device.platform_index}:{device.device_index}", tuning=tuning)
        for graph in graphs
    ]
    for runtime in runtimes:
        # Zeros reach every launch; the values computed do not matter.
        runtime.run_dict({info.name: np.zeros(info.shape, np.float32) for info in runtime.graph.inputs})
    built: dict[ProgramSpec, tuple[cl.Program, float]] = {}
    for runtime in runtimes:
        for spec, program in runtime.built_programs().items():
            built.setdefault(spec, (program, runtime.program_provenance[spec.key].seconds))
    results = []
    for spec in sorted(built, key=lambda s: s.key):
        program, seconds = built[spec]
        source = program_source(spec.name)
        binary = _reproducible(context, device.device, spec, program_binary(program, device.device))
        results.append(
            CompiledSpec(
                spec, CompiledProgram(spec.key, program_source_hash(source, spec.options), binary), seconds
            )
        )
    return results


def _reproducible(context: cl.Context, device: cl.Device, spec: ProgramSpec, binary: bytes) -> bytes:
    if not is_pocl_binary(binary):
        return binary
    problem = pocl_binary_problem(binary)
    if problem is not None:  # every runtime would refuse it: fail here, not on users' devices
        raise PrecompileError(f"PoCL returned a malformed binary for {spec.key!r} ({problem}); build again")
    normalized = normalize_pocl_binary(binary)
    if normalized == binary:
        return binary
    try:  # never ship a rewritten binary the driver has not accepted
        build_from_binary(context, device, spec, normalized)
        return normalized
    except BinaryRefused:
        log.warning("PoCL binary of %r could not be made reproducible; keeping it as built", spec.key)
        return binary
