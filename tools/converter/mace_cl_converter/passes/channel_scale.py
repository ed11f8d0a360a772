"""Squeeze-and-excitation scale folding: ``Conv(Mul(x, s))``, ``s`` of shape [N, C, 1, 1],
becomes one Conv that reads ``x`` and takes ``s`` as its input 4.

A squeeze-and-excitation block (EfficientNet, MobileNetV3) ends with ``x * gate``, a
per-channel gate of shape [N, C, 1, 1], and the block's projection convolution is the
product's only reader. The runtime's Conv multiplies input 4 into its input channels as
it loads them (runtime/mace_cl/planning/ops/conv.py; kernels without that multiply into a
scratch buffer first, as the Mul did), which saves the Mul's launch and its pass over the
tensor. The Conv sees exactly the products the Mul wrote. Folded only when:

- the Mul has two inputs, no fused activation, and its one output is read by nothing but
  the Conv's input 0 and is not a graph output;
- ``s`` is a run-time tensor of shape [N, C, 1, 1] against ``x`` of shape [N, C, H, W].

Runs after ``fuse_residual`` (which leaves Convs with more than three inputs alone).
"""

from __future__ import annotations

from mace_cl.model.graph import Node

from mace_cl_converter.model import Model

INPUT_SCALE = 4  # the Conv input that holds the scale


def _scale_of(model: Model, mul: Node, x_index: int) -> str | None:
    x, s = mul.inputs[x_index], mul.inputs[1 - x_index]
    x_shape, s_shape = model.shapes.get(x), model.shapes.get(s)
    if x_shape is None or s_shape is None or len(x_shape) != 4 or s in model.graph.constants:
        return None
    return s if tuple(s_shape) == (x_shape[0], x_shape[1], 1, 1) else None


def run(model: Model) -> bool:
    changed = False
    consumers = model.consumers()
    outputs = model.output_names()
    for mul in list(model.graph.nodes):
        if mul.op_type != "Mul" or len(mul.inputs) != 2 or "activation" in mul.attrs or len(mul.outputs) != 1:
            continue
        product = mul.outputs[0]
        readers = consumers.get(product, [])
        if product in outputs or len(readers) != 1:
            continue
        conv = readers[0]
        if conv.op_type != "Conv" or conv.inputs[0] != product or product in conv.inputs[1:]:
            continue
        if len(conv.inputs) > INPUT_SCALE:
            continue
        x_index = next((i for i in (0, 1) if _scale_of(model, mul, i) is not None), None)
        if x_index is None:
            continue
        conv.inputs = [mul.inputs[x_index], *conv.inputs[1:]]
        conv.inputs += [""] * (INPUT_SCALE - len(conv.inputs)) + [mul.inputs[1 - x_index]]
        model.graph.nodes.remove(mul)
        consumers = model.consumers()
        changed = True
    return changed
