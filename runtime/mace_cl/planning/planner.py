"""Whole-graph planning without OpenCL: shapes, per-node op plans, required programs.

The runtime executes this plan and the build-time precompiler calls
``required_programs`` on the same plan, so both agree on the program list.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mace_cl.model.data_type import allows_tf32_products, storage_dtype
from mace_cl.model.graph import Graph, GraphError
from mace_cl.planning.layout import LayoutError, as_nchw4, nhwc4_nbytes
from mace_cl.planning.ops.base import INT32_MAX, OpPlan, PlanContext, PlanInput, Shape
from mace_cl.planning.ops.registry import plan_node
from mace_cl.planning.program_spec import ProgramSpec
from mace_cl.planning.tunable import mark_tunable

# Device kinds whose plans differ (ops choose other kernels for "gpu"); every other kind
# plans as "cpu". A model must plan for each, so the converter and tests try them all.
PLAN_KINDS = ("cpu", "gpu")

# Programs the runtime itself uses around the ops (kernels/layout.cl).
LAYOUT_PROGRAM = ProgramSpec("layout")

# The build options that select how kernels store tensors in global memory
# (kernels/common.h), by numpy storage dtype (mace_cl.model.data_type).
STORAGE_OPTIONS: dict[np.dtype, tuple[str, ...]] = {
    np.dtype(np.float32): (),
    np.dtype(np.float16): ("-DSTORAGE_HALF",),
}


@dataclass
class GraphPlan:
    graph: Graph
    node_plans: list[OpPlan]
    shapes: dict[str, Shape]  # every non-constant tensor: graph inputs and node outputs
    device_kind: str = "cpu"  # the device kind the plan was made for

    @property
    def storage_dtype(self) -> np.dtype:
        """The numpy dtype of activations and weights in device memory."""
        return storage_dtype(self.graph.data_type)

    @property
    def layout_program(self) -> ProgramSpec:
        """The build of kernels/layout.cl that converts the graph's inputs and outputs."""
        return _with_storage(LAYOUT_PROGRAM, self.storage_dtype)

    def programs(self) -> list[ProgramSpec]:
        specs = {self.layout_program}
        for plan in self.node_plans:
            specs |= plan.programs()
        return sorted(specs, key=lambda spec: spec.key)


def plan_graph(
    graph: Graph, *, device_kind: str, device_fence: bool = False, tf32_mma: bool = False
) -> GraphPlan:
    """Plan every node for a device of ``device_kind`` ("cpu", "gpu", ... as
    ``mace_cl.execution.device.device_kind`` names them), ``device_fence`` and ``tf32_mma``
    (whether the device has TF32 tensor cores; the graph's data type decides whether they are
    used): ops choose kernels by them, so the runtime and the precompiler must pass those of
    the same device (PlanContext). Shapes (and plan errors) do not depend on them."""
    graph.validate()  # first: it names an unknown data type
    context = PlanContext(
        device_kind,
        device_fence,
        tf32_mma=tf32_mma and allows_tf32_products(graph.data_type),
        float32_storage=storage_dtype(graph.data_type) == np.float32,
    )
    shapes: dict[str, Shape] = {}
    for info in graph.inputs:
        try:
            as_nchw4(info.shape)
        except LayoutError as exc:
            raise GraphError(f"graph input {info.name!r}: {exc}") from None
        if nhwc4_nbytes(info.shape) // 4 > INT32_MAX:
            raise GraphError(
                f"graph input {info.name!r} has shape {list(info.shape)}: more elements than the "
                f"kernels' 32-bit indices reach ({INT32_MAX}); give a smaller input shape"
            )
        shapes[info.name] = info.shape
    node_plans: list[OpPlan] = []
    for node in graph.nodes:
        inputs = [_plan_input(graph, shapes, name) for name in node.inputs]
        plan = mark_tunable(
            _with_storage_options(plan_node(node, inputs, context), storage_dtype(graph.data_type))
        )
        for name, shape in zip(node.outputs, plan.output_shapes, strict=True):
            if name:
                shapes[name] = tuple(shape)
        node_plans.append(plan)
    for info in graph.outputs:
        if info.name in graph.constants:
            raise GraphError(f"graph output {info.name!r} is a constant; fold it out of the model")
        if shapes[info.name] != info.shape:
            raise GraphError(
                f"graph output {info.name!r} is declared with shape {list(info.shape)} "
                f"but the nodes produce {list(shapes[info.name])}"
            )
    return GraphPlan(graph=graph, node_plans=node_plans, shapes=shapes, device_kind=device_kind)


def _with_storage(spec: ProgramSpec, dtype: np.dtype) -> ProgramSpec:
    return ProgramSpec(spec.name, spec.options + STORAGE_OPTIONS[dtype])


def _with_storage_options(plan: OpPlan, dtype: np.dtype) -> OpPlan:
    # Ops plan float32 programs; the storage choice is the graph's, so it is added here once.
    if not STORAGE_OPTIONS[dtype]:
        return plan
    plan.launches = [
        replace(launch, program=_with_storage(launch.program, dtype)) for launch in plan.launches
    ]
    return plan


def _plan_input(graph: Graph, shapes: dict[str, Shape], name: str) -> PlanInput:
    if not name:
        return PlanInput(name="", shape=None)
    value = graph.constants.get(name)
    if value is not None:
        # The one place float16 constants (a model of data_type fp16_fp32) are widened: ops
        # read and pack float32 values; the runtime stores the packed weights in the graph's
        # precision again.
        if value.dtype == np.float16:
            value = value.astype(np.float32)
        return PlanInput(name=name, shape=tuple(int(d) for d in value.shape), value=value)
    return PlanInput(name=name, shape=shapes[name])


def required_programs(
    graph: Graph, *, device_kind: str, device_fence: bool = False, tf32_mma: bool = False
) -> list[ProgramSpec]:
    """Every program a model needs on a device of ``device_kind``, ``device_fence`` and ``tf32_mma``,
    sorted by key (for the build-time precompiler)."""
    return plan_graph(graph, device_kind=device_kind, device_fence=device_fence, tf32_mma=tf32_mma).programs()
