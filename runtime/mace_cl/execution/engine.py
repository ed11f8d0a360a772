"""MaceRuntime: run a planned Graph with OpenCL.

All work of ``run`` is enqueued on one in-order queue and synchronised once at the
end, because host round trips dominate on some drivers (notably PoCL).
A runtime reuses its device buffers across calls, so one instance must not run from
several threads at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyopencl as cl

from mace_cl.execution.device import (
    device_identity,
    device_kind,
    has_device_fence,
    has_tf32_mma,
    select_device,
    shared_context,
)
from mace_cl.execution.direct_enqueue import direct_launcher
from mace_cl.execution.local_sizes import fits, launch_limits
from mace_cl.execution.node_arg import NodeArg
from mace_cl.execution.program_store import DiskProgramCache, load_compiled_program_set, shipped_programs
from mace_cl.execution.programs import ProgramBuildListener, ProgramProvider, ProgramRecord, program_cache_for
from mace_cl.model.container import FormatError
from mace_cl.model.graph import Graph, GraphError, Node, TensorInfo
from mace_cl.model.manifest import read_manifest
from mace_cl.model.model_file import ModelFile, read_model
from mace_cl.model.program_file import CompiledProgramSet
from mace_cl.model.tuning_file import KernelInstance, TuningTable
from mace_cl.planning.layout import Nhwc4Shape, nhwc4_nbytes, same_order_as_nchw
from mace_cl.planning.memory import MemoryPlan, Step, plan_memory
from mace_cl.planning.ops.base import (
    ConstantArg,
    CounterArg,
    FloatArg,
    IntArg,
    KernelArg,
    LocalMemArg,
    OutputArg,
    ScratchArg,
    TensorArg,
)
from mace_cl.planning.ops.conv import gpu_divisor_local_sizes
from mace_cl.planning.planner import GraphPlan, plan_graph
from mace_cl.planning.program_spec import ProgramSpec

if TYPE_CHECKING:
    from pyopencl.typing import KernelArg as ClKernelArg

CompiledProgram = bytes | str | Path | CompiledProgramSet


class InputError(ValueError):
    """The arrays given to ``run`` do not match the model's inputs."""


@dataclass
class _Launch:
    kernel: cl.Kernel
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None
    node: str = ""  # for profiles: the node name, or "<input>"/"<output>" conversions
    op_type: str = ""
    kernel_name: str = ""
    program: str = ""  # the ProgramSpec key: which build of the source the kernel comes from
    # Set for launches the plan marks tunable: what a tuned local size is recorded under.
    instance: KernelInstance | None = None


@dataclass(frozen=True)
class TunableLaunch:
    """A launch a tuner may time with other local sizes (``mace_cl.execution.tuner``)."""

    instance: KernelInstance
    kernel: cl.Kernel  # arguments bound, ready to enqueue on the runtime's queue
    local_size: tuple[int, ...] | None  # what the runtime enqueues it with now


@dataclass(frozen=True)
class LaunchProfile:
    """Device time of one kernel launch of a profiled run (OpenCL event START..END)."""

    node: str
    op_type: str
    kernel: str
    program: str  # ProgramSpec key, e.g. "conv2d -DACTIVATION=ACT_RELU"
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None
    device_seconds: float
    start_seconds: float  # START relative to the first launch's START (shows idle gaps)


@dataclass(frozen=True)
class RunProfile:
    """One ``run`` of a runtime created with ``profile=True``.

    ``host_enqueue_seconds`` is the host time spent enqueueing every launch (the Python
    and driver cost per launch, excluding the final wait); ``wall_seconds`` the whole
    ``run`` call. Uploads and read-backs are not in ``launches``."""

    launches: tuple[LaunchProfile, ...]
    host_enqueue_seconds: float
    wall_seconds: float

    @property
    def device_seconds(self) -> float:
        return sum(launch.device_seconds for launch in self.launches)

    @property
    def idle_seconds(self) -> float:
        """Device idle time between the first launch's start and the last one's end:
        the per-command cost of the driver, which fewer launches would save."""
        if not self.launches:
            return 0.0
        last = self.launches[-1]
        return last.start_seconds + last.device_seconds - self.device_seconds


@dataclass
class _Boundary:
    """A graph input or output: host staging buffer + layout conversion launch. Where the
    tensor's device buffer already holds the NCHW float32 array, it is the staging buffer
    and there is no conversion (``convert`` None)."""

    info: TensorInfo
    staging: cl.Buffer
    convert: _Launch | None


class MaceRuntime:
    """Runs one model on one OpenCL device.

    ``model``: a ``Graph``, a ``ModelFile`` or the path of a model file (``.mace``).
    ``compiled_program``: a ``mace_cl_compiled_program.bin`` (path, bytes or decoded set);
    its binaries are used for the programs built for this very device and source, and
    every other program is compiled from source. ``expected_compiled_program_digest`` (the
    build manifest's record) refuses any other file. ``cache_dir``: a writable directory
    that keeps binaries of programs compiled here, tried before the shipped file.
    ``plan_kind``: plan kernels (and local sizes) for this device kind instead of the
    device's own (``mace_cl.execution.device.device_kind``); tests use it to run the "gpu" plans on
    PoCL. A precompiled file only matches plans made for its device's kind.
    ``tuning``: tuned local sizes (``mace_cl.model.tuning_file``), over any the compiled-program
    file holds; either is used only for this very device identity, only for launches the plan
    marks tunable, and only where the device accepts the size (else the plan's own).
    """

    def __init__(
        self,
        model: Graph | ModelFile | str | Path,
        device: str = "any",
        compiled_program: CompiledProgram | None = None,
        cache_dir: str | Path | None = None,
        expected_compiled_program_digest: str | None = None,
        profile: bool = False,
        plan_kind: str | None = None,
        tuning: TuningTable | None = None,
    ) -> None:
        self.init_timings: dict[str, float] = {}
        self._disk_cache: DiskProgramCache | None = None
        # Profiling events cost host time per launch, so only benchmarks ask for them.
        self.profile = profile
        self._last_profile: RunProfile | None = None
        self.program_provenance: dict[str, ProgramRecord] = {}
        # One run at a time: every run uses the same device buffers and staging copies.
        self._run_lock = threading.Lock()

        with self._phase("load"):
            self.model_file = model if isinstance(model, ModelFile) else None
            if isinstance(model, (str, Path)):
                self.model_file = read_model(model)
            graph = self.model_file.graph if self.model_file is not None else model
            assert isinstance(graph, Graph)
            self.compiled_programs = (
                load_compiled_program_set(compiled_program, expected_compiled_program_digest)
                if compiled_program is not None
                else None
            )
        with self._phase("device"):
            self.device = select_device(device)
            self.context = shared_context(self.device)
            self.queue = (
                cl.CommandQueue(self.context, properties=cl.command_queue_properties.PROFILING_ENABLE)
                if profile
                else cl.CommandQueue(self.context)  # no properties: the same as properties=0
            )
        with self._phase("plan"):
            self.graph = graph
            # Kernels are chosen per device kind, so planning needs the device first.
            self.plan_kind = plan_kind or device_kind(self.device)
            self.plan: GraphPlan = plan_graph(
                graph,
                device_kind=self.plan_kind,
                device_fence=has_device_fence(self.device),
                tf32_mma=has_tf32_mma(self.device),
            )
            # float32, or float16 for a model of data_type fp16_fp32: device tensors and weights.
            self._storage_dtype = self.plan.storage_dtype
            self.memory_plan: MemoryPlan = self._plan_memory()
            self._check_allocations()
        with self._phase("programs"):
            self._programs = self._get_programs(cache_dir)
        with self._phase("constants"):
            self._constants = self._upload_constants()
            self._counters = self._zeroed_counters()
        with self._phase("buffers"):
            self._buffers = [
                cl.Buffer(self.context, cl.mem_flags.READ_WRITE, size)
                for size in self.memory_plan.buffer_sizes
            ]
        with self._phase("kernels"):
            self.tuned_local_sizes = self._tuned_local_sizes(tuning)
            self.tuned_launch_count = 0  # launches enqueued with a tuned local size
            self._launches = self._bind_launches()
            # Unprofiled runs skip pyopencl's per-launch Event where they can (direct_enqueue).
            prepare = direct_launcher(self.queue)
            self._direct_launches = (
                [prepare(launch.kernel, launch.global_size, launch.local_size) for launch in self._launches]
                if prepare is not None
                else None
            )
            self._inputs = [self._boundary(info, "nchw_to_nhwc4") for info in graph.inputs]
            self._outputs = [self._boundary(info, "nhwc4_to_nchw") for info in graph.outputs]

    @classmethod
    def from_manifest(
        cls,
        manifest_path: str | Path,
        device: str = "any",
        cache_dir: str | Path | None = None,
        verify_compiled_program: bool = True,
        profile: bool = False,
    ) -> MaceRuntime:
        """Starts on the files a ``mace_model`` build produced, as named by its manifest.

        The model file must have the digest the build recorded (else FormatError); a
        compiled-program file with another digest is refused (compiled from source instead)
        unless ``verify_compiled_program`` is False.
        """
        manifest_path = Path(manifest_path)
        manifest = read_manifest(manifest_path)
        model = read_model(manifest_path.parent / manifest.model)
        if model.digest != manifest.model_digest:
            raise FormatError(
                f"{manifest_path.parent / manifest.model}: digest {model.digest[:16]} is not the "
                f"{manifest.model_digest[:16]} its manifest records; rebuild the mace_model target"
            )
        compiled = (
            None if manifest.compiled_program is None else manifest_path.parent / manifest.compiled_program
        )
        return cls(
            model,
            device=device,
            compiled_program=compiled,
            cache_dir=cache_dir,
            expected_compiled_program_digest=manifest.compiled_program_digest
            if verify_compiled_program
            else None,
            profile=profile,
        )

    def device_memory_bytes(self) -> dict[str, int]:
        """Bytes of the device buffers this runtime holds: activations (the memory plan's shared
        buffers), constants (packed weights and the kernels' counters) and staging
        (input/output copies in NCHW)."""
        sizes = {
            "activations": sum(buffer.size for buffer in self._buffers),
            "constants": sum(buffer.size for buffer in (*self._constants.values(), *self._counters.values())),
            "staging": sum(
                boundary.staging.size
                for boundary in (*self._inputs, *self._outputs)
                if boundary.convert is not None  # else the staging buffer is an activation buffer
            ),
        }
        return {**sizes, "total": sum(sizes.values())}

    def built_programs(self) -> dict[ProgramSpec, cl.Program]:
        """The program objects this runtime enqueues, by spec (the precompiler reads their binaries)."""
        return dict(self._programs)

    def program_origins(self) -> dict[str, int]:
        """How many programs came from each origin: "cache", "shipped" (a driver's binaries),
        "shipped-sass" / "shipped-ptx" (cross-compiled for NVIDIA GPUs) or "source"."""
        counts: dict[str, int] = {}
        for record in self.program_provenance.values():
            counts[record.origin] = counts.get(record.origin, 0) + 1
        return counts

    # ---- init ---------------------------------------------------------------

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.init_timings[name] = time.perf_counter() - start

    def _plan_memory(self) -> MemoryPlan:
        element_bytes = self._storage_dtype.itemsize
        sizes = {name: nhwc4_nbytes(shape, element_bytes) for name, shape in self.plan.shapes.items()}
        steps = []
        aliases = {}
        for node, node_plan in zip(self.graph.nodes, self.plan.node_plans, strict=True):
            for output, source in node_plan.aliases.items():
                aliases[node.outputs[output]] = node.inputs[source]
            scratch = []
            for key, nbytes in node_plan.scratch_bytes.items():
                scratch.append(_scratch_name(node.name, key))
                sizes[scratch[-1]] = nbytes
            steps.append(
                Step(
                    reads=tuple(node.inputs),
                    writes=tuple(n for n in node.outputs if n),
                    scratch=tuple(scratch),
                )
            )
        return plan_memory(
            steps,
            sizes,
            [i.name for i in self.graph.inputs],
            [o.name for o in self.graph.outputs],
            aliases,
        )

    def _get_programs(self, cache_dir: str | Path | None) -> dict[ProgramSpec, cl.Program]:
        cache = program_cache_for(self.context)
        providers: list[ProgramProvider] = []
        listeners: list[ProgramBuildListener] = []
        if cache_dir is not None:
            try:
                self._disk_cache = DiskProgramCache(cache_dir, self.device)
                providers.append(self._disk_cache)
                listeners.append(self._disk_cache)
            except OSError as exc:  # a cache that cannot exist must not stop inference
                logging.getLogger("mace_cl").warning(
                    "cannot use the program cache %s (%s); running without it", cache_dir, exc.strerror or exc
                )
        if self.compiled_programs is not None:
            providers.extend(shipped_programs(self.compiled_programs, self.device))
        programs = {}
        for spec in self.plan.programs():
            program, record = cache.get(spec, providers, listeners)
            programs[spec] = program
            self.program_provenance[spec.key] = record
        return programs

    def _upload_constants(self) -> dict[tuple[int, str], cl.Buffer]:
        flags = cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR
        buffers = {}
        for index, node_plan in enumerate(self.plan.node_plans):
            for key, value in node_plan.constants.items():
                dtype = np.float32 if key in node_plan.table_constants else self._storage_dtype
                if dtype == np.float16:
                    _check_half_holds(self.graph.nodes[index], key, np.asarray(value))
                data = np.ascontiguousarray(value, dtype=dtype)
                if data.size == 0:
                    data = np.zeros(1, dtype)  # OpenCL buffers cannot be empty
                buffers[(index, key)] = cl.Buffer(self.context, flags, hostbuf=data)
        return buffers

    def _zeroed_counters(self) -> dict[tuple[int, str], cl.Buffer]:
        # Each node gets its own: kernels leave them zero for the next run, so none may be
        # reused for anything else.
        flags = cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR
        return {
            (index, key): cl.Buffer(self.context, flags, hostbuf=np.zeros(max(count, 1), np.int32))
            for index, node_plan in enumerate(self.plan.node_plans)
            for key, count in node_plan.counters.items()
        }

    def _buffer_of(self, name: str) -> cl.Buffer:
        return self._buffers[self.memory_plan.assignment[name]]

    def _tuned_local_sizes(self, tuning: TuningTable | None) -> dict[KernelInstance, tuple[int, ...]]:
        """The tuned sizes recorded for exactly this device (file's, then ``tuning``'s)."""
        table = self.compiled_programs.tuning if self.compiled_programs is not None else TuningTable()
        if tuning is not None:
            table = table.merged(tuning)
        return table.for_device(device_identity(self.device))

    def _bind_launches(self) -> list[_Launch]:
        kind = self.plan_kind  # local sizes tuned for the kind the kernels were chosen for
        launches = []
        refused: list[str] = []
        for index, node_plan in enumerate(self.plan.node_plans):
            node = self.graph.nodes[index]
            for launch in node_plan.launches:
                kernel = cl.Kernel(self._programs[launch.program], launch.kernel)
                kernel.set_args(*(self._kernel_arg(arg, index) for arg in launch.args))
                local = launch.local_size_for(kind)
                instance = None
                if launch.tunable:
                    instance = KernelInstance(launch.program.key, launch.kernel, launch.global_size)
                    tuned = self.tuned_local_sizes.get(instance)
                    if tuned is not None:
                        problem = fits(tuned, launch.global_size, launch_limits(self.device, [kernel]))
                        if problem is None:
                            local = tuned
                            self.tuned_launch_count += 1
                        else:
                            refused.append(f"{launch.kernel} of node {node.name!r}: {problem}")
                launches.append(
                    _Launch(
                        kernel,
                        launch.global_size,
                        local,
                        node.name,
                        node.op_type,
                        launch.kernel,
                        launch.program.key,
                        instance,
                    )
                )
        if refused:
            logging.getLogger("mace_cl").warning(
                "ignoring %d tuned local size(s) this device cannot use (the plan's are used): %s",
                len(refused),
                "; ".join(refused[:3]),
            )
        return launches

    def tunable_launches(self) -> list[TunableLaunch]:
        """The launches of ``run`` a tuner may time with other local sizes, in run order."""
        return [
            TunableLaunch(launch.instance, launch.kernel, launch.local_size)
            for launch in self._launches
            if launch.instance is not None
        ]

    def _kernel_arg(self, arg: KernelArg, node_index: int) -> ClKernelArg:
        node = self.graph.nodes[node_index]
        if isinstance(arg, OutputArg):
            return self._buffer_of(node.outputs[arg.index])
        if isinstance(arg, TensorArg):
            if arg.name not in self.memory_plan.assignment:
                # An op bug, not a user error: constants travel as ConstantArg.
                raise RuntimeError(
                    f"node {node.name!r} ({node.op_type}) launches a kernel on tensor "
                    f"{arg.name!r}, which has no device buffer; pass constants as "
                    "ConstantArg from OpPlan.constants"
                )
            return self._buffer_of(arg.name)
        if isinstance(arg, ConstantArg):
            return self._constants[(node_index, arg.key)]
        if isinstance(arg, ScratchArg):
            return self._buffer_of(_scratch_name(node.name, arg.key))
        if isinstance(arg, CounterArg):
            return self._counters[(node_index, arg.key)]
        if isinstance(arg, IntArg):
            return np.int32(arg.value)
        if isinstance(arg, FloatArg):
            return np.float32(arg.value)
        if isinstance(arg, LocalMemArg):
            # pyopencl's KernelArg type leaves out LocalMemory, which set_args takes.
            return cl.LocalMemory(arg.nbytes)  # type: ignore[return-value]
        raise TypeError(f"unknown kernel argument {arg!r}")

    def _boundary(self, info: TensorInfo, kernel_name: str) -> _Boundary:
        device_buffer = self._buffer_of(info.name)
        if self._storage_dtype == np.float32 and same_order_as_nchw(info.shape):
            return _Boundary(info, device_buffer, None)
        geo = Nhwc4Shape.of(info.shape)
        # Staging holds the user's float32 array; the layout kernels round to and widen from
        # the model's storage on the device (kernels/layout.cl), where it costs nothing.
        staging = cl.Buffer(self.context, cl.mem_flags.READ_WRITE, geo.n * geo.c * geo.h * geo.w * 4)
        layout_program = self.plan.layout_program
        kernel = cl.Kernel(self._programs[layout_program], kernel_name)
        dims = (np.int32(geo.h), np.int32(geo.w), np.int32(geo.c))
        if kernel_name == "nchw_to_nhwc4":
            kernel.set_args(staging, device_buffer, *dims)
            size = (geo.c4, geo.w, geo.n * geo.h)
        else:
            kernel.set_args(device_buffer, staging, *dims)
            size = (geo.w, geo.h, geo.n * geo.c)
        label = "<input>" if kernel_name == "nchw_to_nhwc4" else "<output>"
        # The layout kernels have no bounds checks, so local sizes must divide the global
        # size; NVIDIA's own choice for an RGB input's (1, W, H) took 37 us on an H100.
        local = dict(gpu_divisor_local_sizes(size)).get(self.plan_kind)
        return _Boundary(
            info,
            staging,
            _Launch(kernel, size, local, label, "layout", kernel_name, layout_program.key),
        )

    # ---- inspection (tests, debugging) ---------------------------------------

    def fill_activation_buffers(self, value: float) -> None:
        """Fill every activation buffer with ``value`` (e.g. NaN), so a test can tell
        whether kernels write all of their outputs, padding lanes included."""
        pattern = self._storage_dtype.type(value)
        for buffer in self._buffers:
            cl.enqueue_fill_buffer(self.queue, buffer, pattern, 0, buffer.size)
        self.queue.finish()

    def read_nhwc4(self, name: str) -> np.ndarray:
        """Raw NHWC4 contents (flat, widened to float32) of tensor ``name``'s device buffer.

        Meaningful after ``run`` only for tensors whose buffer no later tensor reuses,
        such as graph inputs and outputs."""
        if name not in self.plan.shapes:
            raise KeyError(f"{name!r} is not a tensor computed by this model")
        result = np.empty(Nhwc4Shape.of(self.plan.shapes[name]).num_float4 * 4, dtype=self._storage_dtype)
        cl.enqueue_copy(self.queue, result, self._buffer_of(name))
        return result.astype(np.float32)

    # ---- run ----------------------------------------------------------------

    def get_inputs(self) -> list[NodeArg]:
        """The model's inputs (name, shape, ONNX type string), in order, as onnxruntime gives them."""
        return [NodeArg.of(info) for info in self.graph.inputs]

    def get_outputs(self) -> list[NodeArg]:
        """The model's outputs (name, shape, ONNX type string), in order."""
        return [NodeArg.of(info) for info in self.graph.outputs]

    def run(
        self, output_names: Sequence[str] | None, input_feed: Mapping[str, np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """The outputs named by ``output_names`` (``None``: all, in the model's order), as a list.

        The call of ``onnxruntime.InferenceSession.run``: inputs are NCHW (ONNX-semantics)
        numpy arrays by input name. ``run_dict`` returns every output by name instead.
        Thread safety as ``run_dict``.
        """
        # input_feed defaults to None only so that the older run(feeds) call gets this message.
        if isinstance(output_names, Mapping) or input_feed is None:
            raise InputError(
                "run() takes (output_names, input_feed) as onnxruntime does, e.g. "
                "run(None, {'x': x}); to get a dict of outputs by name call run_dict(input_feed)"
            )
        known = [info.name for info in self.graph.outputs]
        if output_names is None:
            names = known
        else:
            if isinstance(output_names, str):
                raise InputError(f"output_names must be a list of names, e.g. [{output_names!r}], or None")
            names = list(output_names)
            unknown = [name for name in names if name not in known]
            if unknown:
                raise InputError(
                    f"unknown output(s) {', '.join(map(repr, unknown))}; the model's outputs are {known}"
                )
        results = self.run_dict(input_feed)
        return [results[name] for name in names]

    def run_dict(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output by name, for NCHW (ONNX-semantics) numpy arrays by input name.

        Safe to call from several threads: runs on one runtime are serialized (they share its
        device buffers); for parallel inference, create one runtime per thread.
        """
        with self._run_lock:
            return self._run(feeds)

    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        arrays = self._checked_inputs(feeds)
        events: list[tuple[_Launch, cl.Event]] = []
        for boundary, array in zip(self._inputs, arrays, strict=True):
            cl.enqueue_copy(self.queue, boundary.staging, array, is_blocking=False)
            if boundary.convert is not None:
                events.append((boundary.convert, self._enqueue(boundary.convert)))
        enqueue_start = time.perf_counter()
        if self._direct_launches is not None and not self.profile:
            for direct in self._direct_launches:
                direct()
        else:
            for launch in self._launches:
                events.append((launch, self._enqueue(launch)))
        enqueue_seconds = time.perf_counter() - enqueue_start
        results: dict[str, np.ndarray] = {}
        for boundary in self._outputs:
            if boundary.convert is not None:
                events.append((boundary.convert, self._enqueue(boundary.convert)))
            result = np.empty(boundary.info.shape, dtype=np.float32)
            cl.enqueue_copy(self.queue, result, boundary.staging, is_blocking=False)
            results[boundary.info.name] = result
        self.queue.finish()  # the only synchronisation; `arrays` stays alive until here
        if self._disk_cache is not None:
            self._disk_cache.flush()  # after a run, so binaries carry per-launch code (PoCL)
        if self.profile:
            self._last_profile = _run_profile(events, enqueue_seconds, time.perf_counter() - start)
        return results

    def _check_allocations(self) -> None:
        """A buffer over the device's largest allocation fails here, by name, not in OpenCL."""
        limit = self.device.max_mem_alloc_size
        largest = max(self.memory_plan.buffer_sizes, default=0)
        if largest > limit:
            raise GraphError(
                f"this model needs a device buffer of {largest} bytes, over the largest allocation "
                f"{self.device.name.strip()} allows ({limit} bytes); give the model a smaller input shape"
            )

    def last_profile(self) -> RunProfile:
        """Per-launch device times of the latest ``run`` (needs ``profile=True``)."""
        if not self.profile:
            raise RuntimeError("create the runtime with MaceRuntime(..., profile=True) to profile runs")
        if self._last_profile is None:
            raise RuntimeError("no profiled run yet: call run() first")
        return self._last_profile

    def _enqueue(self, launch: _Launch) -> cl.Event:
        return cl.enqueue_nd_range_kernel(self.queue, launch.kernel, launch.global_size, launch.local_size)

    def _checked_inputs(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        if not isinstance(feeds, Mapping):
            raise InputError(
                f"the inputs must be a dict of input name -> numpy array, got {type(feeds).__name__}"
            )
        expected = [info.name for info in self.graph.inputs]
        # Sorted by their text: keys of mixed types do not compare with one another.
        unknown = sorted(map(repr, set(feeds) - set(expected)))
        if unknown:
            raise InputError(f"unknown input(s) {', '.join(unknown)}; the model's inputs are {expected}")
        arrays = []
        for info in self.graph.inputs:
            if info.name not in feeds:
                raise InputError(f"input {info.name!r} is missing; the model's inputs are {expected}")
            array = feeds[info.name]
            if not isinstance(array, np.ndarray):
                raise InputError(f"input {info.name!r} must be a numpy array, got {type(array).__name__}")
            if array.dtype != np.dtype(info.dtype):
                raise InputError(
                    f"input {info.name!r} has dtype {array.dtype}; the model expects {info.dtype} "
                    f"(convert with array.astype(numpy.{info.dtype}))"
                )
            if tuple(array.shape) != info.shape:
                raise InputError(
                    f"input {info.name!r} has shape {list(array.shape)}; the model expects {list(info.shape)} (NCHW)"
                )
            arrays.append(np.ascontiguousarray(array))
        return arrays


def _run_profile(
    events: list[tuple[_Launch, cl.Event]], enqueue_seconds: float, wall_seconds: float
) -> RunProfile:
    origin = events[0][1].profile.start if events else 0
    launches = tuple(
        LaunchProfile(
            launch.node,
            launch.op_type,
            launch.kernel_name,
            launch.program,
            launch.global_size,
            launch.local_size,
            (event.profile.end - event.profile.start) * 1e-9,  # nanoseconds
            (event.profile.start - origin) * 1e-9,
        )
        for launch, event in events
    )
    return RunProfile(launches, enqueue_seconds, wall_seconds)


# Half precision's largest finite value; values of at most half its smallest (2^-25) round to 0.
_HALF_MAX = float(np.finfo(np.float16).max)


def _check_half_holds(node: Node, key: str, value: np.ndarray) -> None:
    """GraphError unless half storage keeps ``value`` finite and, when nonzero, not all zero.

    The converter refuses such weights by name; a model file written before the device stored
    half, a hand-built graph or a constant outside the converter's weight table reaches here."""
    if not value.size:
        return
    largest = float(np.max(np.abs(value)))
    what = f"node {node.name!r} ({node.op_type}): constant {key!r}"
    if largest > _HALF_MAX:
        raise GraphError(
            f"{what} holds {largest:g}, beyond half precision's range ({_HALF_MAX:g}) that a model of "
            "data_type fp16_fp32 stores on the device; convert the model with data_type fp32"
        )
    if largest > 0.0 and not np.any(value.astype(np.float16)):
        raise GraphError(
            f"{what} holds values of at most {largest:g}, which half precision stores as 0 in a model of "
            "data_type fp16_fp32; convert the model with data_type fp32 (or raise that constant)"
        )


def _scratch_name(node_name: str, key: str) -> str:
    # "#" cannot clash with tensor names produced by the converter's naming.
    return f"{node_name}#scratch#{key}"
