"""Times candidate local sizes of a runtime's tunable launches and keeps the fastest.

As MACE's tuner does: per kernel instance (program key, kernel name, global size) about 30
local sizes that the device accepts (``local_sizes.candidate_local_sizes``) are timed with
OpenCL profiling events, each after one untimed launch (drivers such as PoCL compile code per
local size at the first launch), the best of ``repeats`` runs counting. All launches of a model
that share an instance are timed together, since they share the stored size. A candidate is
kept only if it beats the launch's own size by ``min_gain`` twice in a row (a second timing of
both guards against a lucky run), so noise leaves the plan's choice in place. Only launches the
plan marks tunable are touched, and the global size never changes: outputs are the same.
Timing is nondeterministic, so a table from here is a measurement, not a pure build output.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyopencl as cl

from mace_cl.execution.device import device_identity
from mace_cl.execution.engine import MaceRuntime, TunableLaunch
from mace_cl.execution.local_sizes import candidate_local_sizes, launch_limits
from mace_cl.model.tuning_file import KernelInstance, TuningTable

Sizes = tuple[int, ...]


@dataclass(frozen=True)
class InstanceResult:
    """What tuning found for one kernel instance (seconds per run of its launches)."""

    instance: KernelInstance
    launches: int
    default_local: Sizes | None  # None: the driver picks
    default_seconds: float
    tuned_local: Sizes | None  # None: nothing beat the default, none stored
    tuned_seconds: float
    candidates: int


@dataclass(frozen=True)
class TuningResult:
    table: TuningTable
    instances: tuple[InstanceResult, ...]
    seconds: float  # wall time of the whole tuning


def _time(
    queue: cl.CommandQueue,
    kernels: Sequence[cl.Kernel],
    global_size: Sizes,
    local: Sizes | None,
    repeats: int,
) -> float | None:
    """Best device time over ``repeats`` of enqueueing every kernel once; None if refused."""
    try:
        for kernel in kernels:
            cl.enqueue_nd_range_kernel(queue, kernel, global_size, local)
        queue.finish()
        best = math.inf
        for _ in range(repeats):
            events = [cl.enqueue_nd_range_kernel(queue, kernel, global_size, local) for kernel in kernels]
            queue.finish()
            best = min(best, sum(event.profile.end - event.profile.start for event in events) * 1e-9)
        return best
    except cl.Error:  # e.g. CL_OUT_OF_RESOURCES for a size the kernel cannot take after all
        return None


def default_feeds(runtime: MaceRuntime, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic inputs in [-1, 1], so buffers hold ordinary (not denormal) values."""
    rng = np.random.default_rng(seed)
    return {info.name: rng.uniform(-1.0, 1.0, info.shape).astype(info.dtype) for info in runtime.graph.inputs}


def tune(
    runtime: MaceRuntime,
    *,
    max_candidates: int = 30,
    repeats: int = 5,
    min_gain: float = 0.03,
    max_seconds: float | None = None,
    feeds: Mapping[str, np.ndarray] | None = None,
) -> TuningResult:
    """Tuned local sizes of ``runtime``'s tunable launches on its device.

    ``max_seconds`` stops starting new instances once spent (the slowest instances go first,
    so a budget buys the largest gains); those left keep their defaults.
    """
    start = time.perf_counter()
    runtime.run_dict(feeds if feeds is not None else default_feeds(runtime))
    queue = cl.CommandQueue(runtime.context, properties=cl.command_queue_properties.PROFILING_ENABLE)
    groups: dict[KernelInstance, list[TunableLaunch]] = {}
    for launch in runtime.tunable_launches():
        groups.setdefault(launch.instance, []).append(launch)
    defaults = {}
    for instance, launches in groups.items():
        kernels = [launch.kernel for launch in launches]
        measured = _time(queue, kernels, instance.global_size, launches[0].local_size, repeats)
        if measured is not None:
            defaults[instance] = measured
    identity = device_identity(runtime.device)
    table = TuningTable()
    results = []
    for instance in sorted(defaults, key=lambda item: (-defaults[item], item)):
        launches = groups[instance]
        kernels = [launch.kernel for launch in launches]
        default_local = launches[0].local_size
        default_seconds = defaults[instance]
        candidates: list[Sizes] = []
        if max_seconds is None or time.perf_counter() - start < max_seconds:
            limits = launch_limits(runtime.device, kernels)
            candidates = [
                local
                for local in candidate_local_sizes(instance.global_size, limits, max_candidates)
                if local != default_local
            ]
        best_local, best_seconds = None, default_seconds
        for local in candidates:
            if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                break
            measured = _time(queue, kernels, instance.global_size, local, repeats)
            if measured is not None and measured < best_seconds:
                best_local, best_seconds = local, measured
        tuned_local = None
        if best_local is not None and best_seconds < default_seconds * (1 - min_gain):
            again_default = _time(queue, kernels, instance.global_size, default_local, repeats)
            again_best = _time(queue, kernels, instance.global_size, best_local, repeats)
            if again_default is not None and again_best is not None:
                if again_best < again_default * (1 - min_gain):
                    tuned_local = best_local
                    table.set(identity, instance, best_local)
                    default_seconds = min(default_seconds, again_default)
                    best_seconds = min(best_seconds, again_best)
        results.append(
            InstanceResult(
                instance,
                len(launches),
                default_local,
                default_seconds,
                tuned_local,
                best_seconds if tuned_local is not None else default_seconds,
                len(candidates),
            )
        )
    return TuningResult(table, tuple(results), time.perf_counter() - start)
