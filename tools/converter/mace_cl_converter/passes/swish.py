"""Recognise the gated activations exporters write as two nodes and emit the runtime's one:
x * Sigmoid(x) (SiLU/Swish) -> Swish, and x * HardSigmoid(x) with alpha 1/6, beta 1/2 (how
torch writes Hardswish before opset 14, e.g. MobileNetV3) -> HardSwish.

One kernel instead of two, and the result can then be fused into the Conv before it.
"""

from __future__ import annotations

import math

from mace_cl.model.graph import Node

from mace_cl_converter.attributes import as_float
from mace_cl_converter.model import Model

# HardSwish(x) = x * HardSigmoid(x) for exactly these HardSigmoid parameters (ONNX's
# HardSwish definition); other parameters stay two nodes. Exporters store 1/6 as float32.
_HARD_SWISH_ALPHA, _HARD_SWISH_BETA = 1.0 / 6.0, 0.5


def _gate(gate: Node) -> tuple[str, dict] | None:
    """(op type, attributes) of the one-node form of ``x * gate(x)``, or None."""
    if gate.op_type == "Sigmoid":
        return "Swish", {"alpha": 1.0}
    if gate.op_type == "HardSigmoid":
        alpha = as_float(gate.attrs.get("alpha", 0.2))
        beta = as_float(gate.attrs.get("beta", 0.5))
        if math.isclose(alpha, _HARD_SWISH_ALPHA, rel_tol=1e-6) and beta == _HARD_SWISH_BETA:
            return "HardSwish", {}
    return None


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
            gate = producers.get(s)
            if gate is None or gate.inputs[0] != x or len(consumers.get(s, [])) != 1 or s in graph_outputs:
                continue
            fused = _gate(gate)
            if fused is None:
                continue
            node.op_type, node.attrs = fused
            node.inputs = [x]
            model.graph.nodes.remove(gate)
            changed = True
            break
    return changed
