"""Shape inference: the runtime planner's own shape rules, node by node.

One source of truth: a node's output shapes are whatever ``mace_cl.planning.ops`` plans for it.
Only when the runtime cannot plan a node (e.g. a rank-5 Reshape that a later pass
rewrites away) do the small numpy-style rules below give its shapes, so the
rest of the graph can still be inferred; the planning error is kept and reported if
the node survives every pass.
"""

from __future__ import annotations

import math

import numpy as np
from mace_cl.model.graph import Node
from mace_cl.planning.ops.base import OpError, PlanInput
from mace_cl.planning.ops.registry import plan_node, planner_for

from mace_cl_converter.attributes import as_ints
from mace_cl_converter.model import Model, Shape


class ShapeUnknown(Exception):
    """An input's shape is not known (its producer could not be inferred)."""


def plan_inputs(model: Model, node: Node) -> list[PlanInput]:
    items = []
    for name in node.inputs:
        if not name:
            items.append(PlanInput(name="", shape=None))
            continue
        value = model.graph.constants.get(name)
        if value is not None:
            items.append(PlanInput(name=name, shape=tuple(value.shape), value=value))
        elif name in model.shapes:
            items.append(PlanInput(name=name, shape=model.shapes[name]))
        else:
            raise ShapeUnknown(name)
    return items


def infer_node(model: Model, node: Node) -> list[Shape] | None:
    """Output shapes of ``node`` (also stored in ``model.shapes``); None when unknown."""
    try:
        inputs = plan_inputs(model, node)
    except ShapeUnknown as exc:
        # Keep the first cause so the final error names the node that really failed.
        producer = model.producers().get(str(exc))
        cause = model.pending_errors.get(producer.name) if producer is not None else None
        model.pending_errors[node.name] = cause or f"the shape of {exc} is unknown"
        return None
    shapes: list[Shape] | None = None
    model.pending_errors.pop(node.name, None)
    if planner_for(node.op_type) is not None:
        shapes, error = _planned_shapes(model, node, inputs)
        if error is not None:
            model.pending_errors[node.name] = error
    else:
        model.pending_errors[node.name] = f"node {node.name!r} ({node.op_type}): not a runtime op"
    if shapes is None:
        shapes = _fallback_shapes(node, inputs)
    if shapes is None:
        return None
    for name, shape in zip(node.outputs, shapes, strict=False):
        if name:
            model.shapes[name] = shape
    return shapes


# Constants up to this many elements key the plan cache by value (shape parameters such
# as Reshape targets or Slice bounds); larger ones are weights, keyed by identity.
_VALUE_KEY_ELEMENTS = 4096


def _plan_key(node: Node, inputs: list[PlanInput], pinned: list) -> tuple:
    parts: list = [node.op_type, node.name, repr(sorted(node.attrs.items())), len(node.outputs)]
    for item in inputs:
        if item.value is None:
            parts.append((item.name, item.shape))
        elif item.value.size <= _VALUE_KEY_ELEMENTS:
            parts.append((item.shape, item.value.dtype.str, item.value.tobytes()))
        else:
            pinned.append(item.value)  # keeps id() unique while the cache lives
            parts.append((item.shape, item.value.dtype.str, id(item.value)))
    return tuple(parts)


def _planned_shapes(
    model: Model, node: Node, inputs: list[PlanInput]
) -> tuple[list[Shape] | None, str | None]:
    """The runtime planner's output shapes (or its error) for this node, planned once per
    distinct (op, attributes, input shapes, constant inputs): passes re-infer the whole
    graph several times, and planning packs weights (seconds for a large Gemm)."""
    pinned: list = []
    key = _plan_key(node, inputs, pinned)
    cached = model.plan_cache.get(key)
    if cached is None:
        try:
            cached = ([tuple(s) for s in plan_node(node, inputs).output_shapes], None)
        except OpError as exc:
            cached = (None, str(exc))
        model.plan_cache[key] = cached
        model.plan_cache_pins.extend(pinned)
    shapes, error = cached
    return (list(shapes) if shapes is not None else None), error


def infer_shapes(model: Model) -> None:
    """Recompute ``model.shapes`` for the whole graph and set graph output shapes."""
    model.shapes = {info.name: info.shape for info in model.graph.inputs}
    model.pending_errors.clear()
    for node in model.graph.nodes:
        infer_node(model, node)
    outputs = []
    for info in model.graph.outputs:
        shape = model.shapes.get(info.name)
        outputs.append(type(info)(info.name, shape if shape is not None else info.shape, info.dtype))
    model.graph.outputs = outputs


# ---- fallback rules for shape-only ops the runtime may refuse (rank > 4) ----------


def _fallback_shapes(node: Node, inputs: list[PlanInput]) -> list[Shape] | None:
    if not inputs or inputs[0].shape is None:
        return None
    shape = inputs[0].shape
    if node.op_type == "Transpose":
        perm = node.attrs.get("perm")
        order = as_ints(perm) if isinstance(perm, list) else list(reversed(range(len(shape))))
        return [tuple(shape[i] for i in order)]
    if node.op_type == "Reshape" and len(inputs) > 1 and inputs[1].value is not None:
        target = [int(d) for d in np.asarray(inputs[1].value).reshape(-1)]
        out = [shape[i] if d == 0 and i < len(shape) else d for i, d in enumerate(target)]
        if -1 in out:
            known = math.prod(d for d in out if d != -1)
            out[out.index(-1)] = math.prod(shape) // max(known, 1)
        return [tuple(out)]
    return None
