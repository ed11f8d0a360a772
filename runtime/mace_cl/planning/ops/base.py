"""The op interface: pure planning that yields kernel launches.

An op's plan function receives the node, the shapes of its inputs and the values of
inputs that are graph constants. It returns the output shapes, host-packed constants
and the kernel launches to enqueue, without touching OpenCL. The runtime executes
plans; the build-time precompiler reads ``program`` off every launch to list the
programs a model needs. Both therefore see exactly the same launches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mace_cl.model.graph import AttrValue, Node
from mace_cl.planning.layout import nhwc4_nbytes
from mace_cl.planning.program_spec import ProgramSpec

Shape = tuple[int, ...]


class OpError(ValueError):
    """A node cannot be planned (unsupported attribute, shape or input combination)."""

    def __init__(self, node: Node, message: str) -> None:
        super().__init__(f"node {node.name!r} ({node.op_type}): {message}")


# Kernels index buffers and take sizes as OpenCL int: every element count, work size and
# integer argument must fit in 32 bits, or indices wrap and kernels read the wrong memory.
INT32_MAX = 2**31 - 1


def check_output_size(node: Node, output: str, shape: Shape) -> None:
    """OpError unless a tensor of ``shape`` stays within the kernels' 32-bit indices.

    Ops whose planning does work per output element call it before that work; the registry
    checks every plan's outputs after planning.
    """
    if nhwc4_nbytes(tuple(shape)) // 4 > INT32_MAX:
        raise OpError(
            node,
            f"output {output!r} would have shape {list(shape)}, more elements than the kernels' "
            f"32-bit indices reach ({INT32_MAX}); check its attributes and input shapes",
        )


# ---- kernel arguments -----------------------------------------------------------


@dataclass(frozen=True)
class TensorArg:
    """Device buffer of a graph tensor (graph input or node output), NHWC4 in the model's precision."""

    name: str


@dataclass(frozen=True)
class OutputArg:
    """Device buffer of this node's ``index``-th output, NHWC4 in the model's precision."""

    index: int = 0


@dataclass(frozen=True)
class ConstantArg:
    """Device buffer holding ``OpPlan.constants[key]``, uploaded once at init."""

    key: str


@dataclass(frozen=True)
class ScratchArg:
    """Temporary device buffer of ``OpPlan.scratch_bytes[key]`` bytes, valid during this node only."""

    key: str


@dataclass(frozen=True)
class CounterArg:
    """Device buffer of ``OpPlan.counters[key]`` OpenCL ints of this node, zero when the runtime
    starts and never shared with another node: work-groups count their arrivals there, and a
    kernel using it must leave it zero again (the next run starts from what this one left)."""

    key: str


@dataclass(frozen=True)
class IntArg:
    value: int  # passed as OpenCL int (32-bit)


@dataclass(frozen=True)
class FloatArg:
    value: float  # passed as OpenCL float


@dataclass(frozen=True)
class LocalMemArg:
    """``__local`` memory of ``nbytes`` bytes."""

    nbytes: int


KernelArg = TensorArg | OutputArg | ConstantArg | ScratchArg | CounterArg | IntArg | FloatArg | LocalMemArg


@dataclass(frozen=True)
class KernelLaunch:
    program: ProgramSpec
    kernel: str
    global_size: tuple[int, ...]
    args: tuple[KernelArg, ...]
    # None lets the driver pick. If given, global_size must be a multiple of it
    # (OpenCL 1.2), so kernels must bounds-check padded work-items.
    local_size: tuple[int, ...] | None = None
    # Tuning, not a requirement: the local size to use on devices of a kind ("cpu",
    # "gpu", ... as mace_cl.execution.device.device_kind names them) when ``local_size`` is None.
    # Kinds not listed let the driver pick. Plans choose it so that the runtime makes
    # no performance decisions of its own; the kernel must be correct with any local
    # size that divides global_size.
    tuned_local_sizes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # Whether a tuner may replace the local size with any other that divides global_size
    # (mace_cl.execution.tuner): only for kernels whose outputs never depend on it. Off unless
    # set; the planner sets it for the kernels of mace_cl.planning.tunable.
    tunable: bool = False

    def local_size_for(self, device_kind: str) -> tuple[int, ...] | None:
        """The local size to enqueue with on a device of ``device_kind``."""
        if self.local_size is not None:
            return self.local_size
        return dict(self.tuned_local_sizes).get(device_kind)


# ---- planning ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlanInput:
    """What planning knows about one node input."""

    name: str  # "" for an omitted optional input
    shape: Shape | None  # None when omitted
    value: np.ndarray | None = None  # set when the input is a graph constant

    @property
    def present(self) -> bool:
        return bool(self.name)

    @property
    def is_constant(self) -> bool:
        return self.value is not None


@dataclass
class OpPlan:
    output_shapes: list[Shape]
    launches: list[KernelLaunch] = field(default_factory=list)
    constants: dict[str, np.ndarray] = field(default_factory=dict)  # float32, already packed
    scratch_bytes: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)  # CounterArg key -> number of ints
    # Constants that are lookup tables (indices, coordinates), not tensor data: kernels read
    # them as float whatever the model's data type, so they are uploaded as float32. Every
    # other constant is stored in the model's precision (mace_cl.model.data_type).
    table_constants: frozenset[str] = frozenset()
    # Output index -> input index whose device buffer that output is, unchanged and without a
    # launch (a Reshape between shapes with the same stored NHWC4 view). The memory plan keeps
    # the shared buffer alive while either name is read.
    aliases: dict[int, int] = field(default_factory=dict)

    def programs(self) -> set[ProgramSpec]:
        return {launch.program for launch in self.launches}


@dataclass(frozen=True)
class PlanContext:
    """What planning knows about the target, beyond the node and its inputs.

    ``device_kind`` is the kind of OpenCL device the plan will run on ("cpu", "gpu",
    "accelerator", "other", as ``mace_cl.execution.device.device_kind`` names them). Ops pick kernel
    variants and work splits by it: CPU devices want few fat work-items with explicit
    wide vectors (kernels/conv2d_o16.cl), GPUs want many thin ones and work-group
    reductions (kernels/conv2d_gpu.cl). The runtime plans with its device's kind and the
    precompiler with the kind of the device it compiles for, so both list the same
    programs. Output shapes never depend on it.

    ``device_fence``: whether kernels/common.h's DEVICE_FENCE orders a work-item's global
    stores for every work-group of the launch on this device (NVIDIA's compiler and clang's
    nvptx target, where it is membar.gl; CPU devices). OpenCL C 1.2 does not promise it
    elsewhere, so plans let work-groups finish each other's work in one launch only where
    it is set (``mace_cl.execution.device.has_device_fence``).

    ``tf32_mma``: convolutions may run on TF32 tensor cores (PTX's mma.sync as inline
    assembly, kernels/conv2d_gpu.cl -DMMA_TF32): the device has them
    (``mace_cl.execution.device.has_tf32_mma``) and the model's data type accepts TF32
    products (``mace_cl.model.data_type``).

    ``float32_storage``: the model stores its tensors in float32, so a kernel sequence may
    hand intermediate results through buffers without rounding them (Winograd's transformed
    tiles, ops/winograd.py, would add two roundings to half). Off unless the planner knows
    it (``plan_graph`` sets it from the graph's data type).
    """

    device_kind: str
    device_fence: bool = False
    tf32_mma: bool = False
    float32_storage: bool = False

    @property
    def gpu(self) -> bool:
        return self.device_kind == "gpu"


# For callers that only need output shapes or plan errors (the converter's probes),
# which do not depend on the device kind.
SHAPES_CONTEXT = PlanContext("cpu")

# Op plan functions take ``(node, inputs)`` or, when their choice of kernels depends on
# the target, ``(node, inputs, context: PlanContext = SHAPES_CONTEXT)`` and are registered
# with ``register_op(..., needs_context=True)``: the registry passes the context to those.
# The default lets the converter's probes call any plan function with two arguments.
PlanFn = Callable[..., OpPlan]


# ---- attribute helpers ----------------------------------------------------------


def attr_int(node: Node, key: str, default: int | None = None) -> int:
    value = node.attrs.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise OpError(node, f"attribute {key!r} must be an int, got {value!r}")
    return value


def attr_float(node: Node, key: str, default: float | None = None) -> float:
    value = node.attrs.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OpError(node, f"attribute {key!r} must be a number, got {value!r}")
    return float(value)


def attr_str(node: Node, key: str, default: str | None = None) -> str:
    value: AttrValue | None = node.attrs.get(key, default)
    if not isinstance(value, str):
        raise OpError(node, f"attribute {key!r} must be a string, got {value!r}")
    return value


def expect_attrs(node: Node, known: tuple[str, ...] | frozenset[str]) -> None:
    """OpError naming every attribute outside ``known``.

    An op that ignored an attribute it does not implement (a newer opset's ``mode``, say)
    would silently compute something else; failing at plan time names the gap instead.
    """
    unknown = sorted(set(node.attrs) - set(known))
    if unknown:
        raise OpError(
            node,
            f"attribute(s) {', '.join(map(repr, unknown))} not supported; this op understands "
            + ", ".join(sorted(known)),
        )


def expect_input_count(node: Node, inputs: list[PlanInput], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    present = len(inputs)
    if not low <= present <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise OpError(node, f"expects {want} inputs, got {present}")
    for i, item in enumerate(inputs[:low]):
        if not item.present:
            raise OpError(node, f"input {i} is required but omitted")
