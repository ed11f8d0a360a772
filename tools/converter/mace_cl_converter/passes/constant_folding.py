"""Constant folding: evaluate with numpy every node whose inputs are all known.

"Known" means graph constants, plus the *shape* of run-time tensors for Shape and
Size, so the Shape -> Gather -> Concat -> Reshape chains exporters emit collapse into
constant shape tensors once input shapes are fixed. Needs ``model.shapes`` (the
importer keeps it current; after other passes call ``shape_inference.infer_shapes``).
"""

from __future__ import annotations

import numpy as np
from mace_cl.model.graph import Node

from mace_cl_converter.errors import ConversionError
from mace_cl_converter.evaluate import FoldNode, evaluate
from mace_cl_converter.model import Model

SHAPE_ONLY_OPS = frozenset({"Shape", "Size"})


def input_values(model: Model, node: FoldNode) -> list[np.ndarray | None] | None:
    """Every input's value (None for omitted inputs), or None if one is a run-time tensor."""
    constants = model.graph.constants
    values: list[np.ndarray | None] = []
    for name in node.inputs:
        if not name:
            values.append(None)
        elif name in constants:
            values.append(constants[name])
        elif node.op_type in SHAPE_ONLY_OPS and name in model.shapes:
            # Only the shape is read: an uninitialised stand-in of the right shape will do.
            values.append(np.empty(model.shapes[name], dtype=np.float32))
        else:
            return None
    return values


def try_fold(model: Model, node: FoldNode) -> bool:
    """Replace ``node``'s outputs by constants if possible; the caller removes the node."""
    values = input_values(model, node)
    if values is None or not any(name for name in node.inputs):
        # A node without inputs (e.g. a random generator) is not constant data.
        if node.op_type != "ConstantOfShape" or values is None:
            return False
    try:
        results = evaluate(node, values, model.where, model.max_constant_bytes)
    except (ValueError, TypeError, IndexError, KeyError, MemoryError, OverflowError) as exc:
        raise ConversionError(
            f"{model.where}: cannot fold constant node {node.name!r} ({node.op_type}): {exc}"
        ) from exc
    for name, value in zip(node.outputs, results, strict=False):
        if name:
            model.graph.constants[name] = np.asarray(value)
    return True


def run(model: Model) -> bool:
    """Fold every foldable node, in order (later nodes see earlier results)."""
    kept: list[Node] = []
    changed = False
    for node in model.graph.nodes:
        if try_fold(model, node):
            changed = True
        else:
            kept.append(node)
    model.graph.nodes = kept
    return changed
