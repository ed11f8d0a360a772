"""Dead-node removal: drop nodes no graph output depends on, and unused constants."""

from __future__ import annotations

from mace_cl_converter.model import Model


def run(model: Model) -> bool:
    needed = model.output_names()
    kept = []
    for node in reversed(model.graph.nodes):
        if any(name in needed for name in node.outputs if name):
            kept.append(node)
            needed.update(name for name in node.inputs if name)
    changed = len(kept) != len(model.graph.nodes)
    model.graph.nodes = kept[::-1]
    unused = [name for name in model.graph.constants if name not in needed]
    for name in unused:
        del model.graph.constants[name]
    return changed or bool(unused)
