"""Identity removal (Dropout and float Casts were already imported as Identity).

A consumer of an Identity reads its input instead. When the Identity's output is a
graph output, the producer of its input writes that output name directly, so
user-facing names never change. An Identity that copies a graph input or a constant
straight to a graph output stays (the runtime copies it).
"""

from __future__ import annotations

from mace_cl_converter.model import Model


def run(model: Model) -> bool:
    changed = False
    for node in list(model.graph.nodes):
        if node.op_type != "Identity":
            continue
        source, target = node.inputs[0], node.outputs[0]
        graph_outputs = model.output_names()
        if target not in graph_outputs:
            model.rename_uses(target, source)
        else:
            producer = model.producers().get(source)
            if producer is None or source in graph_outputs:
                continue  # graph input/constant -> output, or output -> output: keep the copy
            producer.outputs = [target if name == source else name for name in producer.outputs]
            model.rename_uses(source, target)
            if source in model.shapes:
                model.shapes[target] = model.shapes[source]
        model.graph.nodes.remove(node)
        changed = True
    return changed
