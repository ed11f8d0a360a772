"""Residual fusion: ``Add(Conv(...), other)`` -> one Conv with ``other`` as input 3
(also a two-input ``Sum``, as older exporters wrote ResNet's shortcuts).

The runtime's Conv adds a fourth input before its fused activation
(``act(conv + bias + residual)``, runtime/mace_cl/planning/ops/conv.py); CPU plans add it in the
pointwise kernel's store, GPU plans in the tiled convolution's, and so save the Add's
launch and its pass over the tensor (MobileNetV2 has 10 such Adds, ResNet50 16). Exact only when nothing else sees the convolution's
own output, so the Conv must:

- feed only this Add (once) and not be a graph output, with one output;
- have no fused activation yet (``act(conv) + other`` is not ``act(conv + other)``);
  the pass runs before ``fuse_activation``, which may then fuse an activation that
  follows the Add;
- and ``other`` must be a run-time tensor of exactly the Add's output shape (no
  broadcasting) other than the Conv's output.

The fused node takes the Add's place in the node order (the Conv's inputs come before
the Conv, ``other`` before the Add) and writes the Add's output.
"""

from __future__ import annotations

from mace_cl.model.graph import Node

from mace_cl_converter.model import Model


def _fusable(
    model: Model, add: Node, index: int, producers: dict, consumers: dict, outputs: set[str]
) -> bool:
    source, other = add.inputs[index], add.inputs[1 - index]
    conv = producers.get(source)
    if conv is None or conv.op_type != "Conv" or len(conv.inputs) > 3 or "activation" in conv.attrs:
        return False
    if len([o for o in conv.outputs if o]) != 1 or len(consumers.get(source, [])) != 1 or source in outputs:
        return False
    if not other or other == source or other in model.graph.constants:
        return False
    shape = model.shapes.get(add.outputs[0])
    return shape is not None and model.shapes.get(other) == shape and model.shapes.get(source) == shape


def run(model: Model) -> bool:
    changed = False
    producers = model.producers()
    consumers = model.consumers()
    outputs = model.output_names()
    for add in list(model.graph.nodes):
        if (
            add.op_type not in ("Add", "Sum")
            or len(add.inputs) != 2
            or "activation" in add.attrs
            or len(add.outputs) != 1
        ):
            continue
        index = next((i for i in (0, 1) if _fusable(model, add, i, producers, consumers, outputs)), None)
        if index is None:
            continue
        conv = producers[add.inputs[index]]
        bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
        conv.inputs = [conv.inputs[0], conv.inputs[1], bias, add.inputs[1 - index]]
        conv.outputs = [add.outputs[0]]
        nodes = model.graph.nodes
        nodes.remove(conv)
        nodes[nodes.index(add)] = conv
        producers = model.producers()
        consumers = model.consumers()
        changed = True
    return changed
