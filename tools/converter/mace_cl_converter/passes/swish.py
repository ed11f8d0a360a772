"""Recognise x * Sigmoid(x) (SiLU/Swish as exporters write it) and emit the runtime's Swish.

One kernel instead of two, and Swish can then be fused into the Conv before it.
"""

from __future__ import annotations

from mace_cl_converter.model import Model


def run(model: Model) -> bool:
    changed = False
    producers = model.producers()
    consumers = model.consumers()
    graph_outputs = model.output_names()
    for node in list(model.graph.nodes):
        if node.op_type != "Mul" or len(node.inputs) != 2:
            continue
        for x_index in (0, 1):
            x, s = node.inputs[x_index], node.inputs[1 - x_index]
            sigmoid = producers.get(s)
            if (
                sigmoid is None
                or sigmoid.op_type != "Sigmoid"
                or sigmoid.inputs[0] != x
                or len(consumers.get(s, [])) != 1
                or s in graph_outputs
            ):
                continue
            node.op_type = "Swish"
            node.inputs = [x]
            node.attrs = {"alpha": 1.0}
            model.graph.nodes.remove(sigmoid)
            changed = True
            break
    return changed
