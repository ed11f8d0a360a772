"""NCHW/NHWC handling: merge chains of Transposes and cancel those that undo each other.

Keras-style exports wrap an NCHW body in an NHWC->NCHW Transpose at the entry and
NCHW->NHWC at the exit, and often put back-to-back pairs inside (e.g. around a Reshape
that was NHWC in the source framework). The graph keeps its user-facing NHWC inputs
and outputs (the entry/exit Transposes stay); only pairs that compose to another
permutation are merged, and to the identity, removed.
"""

from __future__ import annotations

from mace_cl_converter.attributes import as_ints
from mace_cl_converter.model import Model


def _perm(node, rank: int) -> list[int]:
    perm = node.attrs.get("perm")
    return list(perm) if isinstance(perm, list) else list(reversed(range(rank)))


def run(model: Model) -> bool:
    changed = False
    while True:
        producers = model.producers()
        consumers = model.consumers()
        graph_outputs = model.output_names()
        step = False
        for node in model.graph.nodes:
            if node.op_type != "Transpose":
                continue
            first = producers.get(node.inputs[0])
            if first is None or first.op_type != "Transpose":
                continue
            rank = len(model.shapes.get(first.inputs[0], ())) or len(as_ints(first.attrs.get("perm", [])))
            if not rank:
                continue
            inner, outer = _perm(first, rank), _perm(node, rank)
            combined = [inner[i] for i in outer]
            if combined == list(range(rank)) and node.outputs[0] not in graph_outputs:
                model.rename_uses(node.outputs[0], first.inputs[0])
                model.graph.nodes.remove(node)
            else:
                node.inputs = [first.inputs[0]]
                node.attrs["perm"] = combined
            if len(consumers.get(first.outputs[0], [])) == 1 and first.outputs[0] not in graph_outputs:
                model.graph.nodes.remove(first)
            step = changed = True
            break
        if not step:
            return changed
