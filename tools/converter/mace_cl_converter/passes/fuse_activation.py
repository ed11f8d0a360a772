"""Activation fusion: Conv/Gemm/eltwise followed by an activation -> one node.

The producer gets the runtime's fused ``activation`` attributes (docs/runtime.md) and
writes the activation's output. Fusion needs the producer's output to feed only the
activation and not be a graph output. Whether an op type honours the attribute is
asked of its runtime planner (a probe with an unknown activation must be refused),
so a new op that learns fusion is picked up without editing this pass.
"""

from __future__ import annotations

import math

import numpy as np
from mace_cl.model.graph import Node
from mace_cl.planning.ops.base import OpError
from mace_cl.planning.ops.fused_activation import ACTIVATIONS, ONNX_ACTIVATIONS
from mace_cl.planning.ops.registry import planner_for

from mace_cl_converter.attributes import as_float
from mace_cl_converter.model import Model
from mace_cl_converter.passes.shape_inference import ShapeUnknown, plan_inputs

CANDIDATES = frozenset(
    {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum"}
)


def activation_attrs(model: Model, node: Node) -> dict | None:
    """The fused-activation attributes equal to activation ``node``, or None.

    Which ONNX ops are activations, and how their attributes (Clip: constant inputs) map to
    the fused ones, comes from the runtime's table (fused_activation.ACTIVATIONS)."""
    name = ONNX_ACTIVATIONS.get(node.op_type)
    if name is None or name == "none":  # Identity: nothing to fuse (the identity pass drops it)
        return None
    kind = ACTIVATIONS[name]
    result: dict = {"activation": name}
    for parameter in (kind.alpha, kind.beta):
        if parameter is None:
            continue
        if parameter.input is None:
            result[parameter.fused] = as_float(node.attrs.get(parameter.onnx, parameter.default))
            continue
        if parameter.onnx in node.attrs:  # attribute form is never stored (the importer moves it to inputs)
            return None
        index = parameter.input
        source = node.inputs[index] if len(node.inputs) > index else ""
        if source:
            value = model.graph.constants.get(source)
            if value is None or value.size != 1:
                return None
            bound = float(np.asarray(value).reshape(()))
            if math.isfinite(bound):
                result[parameter.fused] = bound
    return result


class _FusionSupport:
    """Asks each op's runtime planner once whether it reads ``activation``."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.answers: dict[str, bool] = {}

    def __call__(self, node: Node) -> bool:
        if node.op_type not in self.answers:
            planner = planner_for(node.op_type)
            if planner is None:
                return False
            probe = Node(
                node.op_type, node.name, node.inputs, node.outputs, {**node.attrs, "activation": "__probe__"}
            )
            try:
                planner(probe, plan_inputs(self.model, probe))
                self.answers[node.op_type] = False  # ignored the unknown activation
            except OpError as exc:
                self.answers[node.op_type] = "__probe__" in str(exc)
            except ShapeUnknown:
                return False
        return self.answers[node.op_type]


def run(model: Model) -> bool:
    supports = _FusionSupport(model)
    changed = False
    producers = model.producers()
    consumers = model.consumers()
    graph_outputs = model.output_names()
    for node in list(model.graph.nodes):
        fused = activation_attrs(model, node)
        if fused is None or not node.inputs:
            continue
        source = node.inputs[0]
        producer = producers.get(source)
        if (
            producer is None
            or producer.op_type not in CANDIDATES
            or "activation" in producer.attrs
            or len(consumers.get(source, [])) != 1
            or source in graph_outputs
            or len([o for o in producer.outputs if o]) != 1
            or not supports(producer)
        ):
            continue
        producer.attrs.update(fused)
        producer.outputs = [node.outputs[0]]
        model.graph.nodes.remove(node)
        producers = model.producers()
        changed = True
    return changed
