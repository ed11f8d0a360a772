"""Sibling convolutions joined by a channel Concat -> one Conv.

``Concat(Conv_a(x), Conv_b(x), ...)`` along channels, every Conv reading the same ``x``,
becomes one Conv whose output channels are theirs in order (SqueezeNet's fire modules: a
1x1 and a 3x3 expand of the same squeeze output, then a Concat). The smaller filters are
zero-padded, centred, to the largest; that is exact when every Conv has stride 1, dilation
1, group 1, an odd square filter and "same" padding (``k // 2`` on every side): each
original tap reads the pixel it read before, and the added taps multiply by zero. The
runtime's conv2d_o32 skips the taps outside the centre for output channel pairs whose
weights are zero there (runtime/mace_cl/planning/ops/conv.py), so a 1x1 padded to 3x3
costs no extra multiply-adds; the merge saves the Concat's copies and a launch per Conv.

Each Conv must feed only this Concat (once), not be a graph output, have constant
weights and bias (or none), no residual input, and the same fused activation as the
others; the pass runs after ``fuse_activation``.
"""

from __future__ import annotations

import numpy as np
from mace_cl.model.graph import Node
from mace_cl.planning.ops.fused_activation import FUSED_ATTRIBUTES

from mace_cl_converter.attributes import as_int, as_ints
from mace_cl_converter.model import Model


def _kernel_size(model: Model, conv: Node, source: str, consumers: dict, outputs: set[str]) -> int | None:
    """The filter size k of a mergeable Conv (k x k, "same" padding), else None."""
    if conv.op_type != "Conv" or len(conv.outputs) != 1 or conv.outputs[0] != source:
        return None
    if len(consumers.get(source, [])) != 1 or source in outputs or len(conv.inputs) > 3:
        return None
    weights = model.graph.constants.get(conv.inputs[1]) if len(conv.inputs) > 1 else None
    bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
    if weights is None or weights.ndim != 4 or (bias and bias not in model.graph.constants):
        return None
    k = weights.shape[2]
    if weights.shape[3] != k or k % 2 == 0:
        return None
    attrs = conv.attrs
    if as_int(attrs.get("group", 1)) != 1 or attrs.get("auto_pad", "NOTSET") != "NOTSET":
        return None
    if any(as_ints(attrs.get(key, [1, 1])) != [1, 1] for key in ("strides", "dilations")):
        return None
    if "kernel_shape" in attrs and as_ints(attrs["kernel_shape"]) != [k, k]:
        return None
    if as_ints(attrs.get("pads", [0, 0, 0, 0])) != [k // 2] * 4:
        return None
    return k


def run(model: Model) -> bool:
    changed = False
    for concat in list(model.graph.nodes):
        if concat.op_type != "Concat" or len(concat.inputs) < 2 or len(concat.outputs) != 1:
            continue
        shape = model.shapes.get(concat.outputs[0])
        if shape is None or len(shape) != 4 or as_int(concat.attrs.get("axis", 0)) not in (1, -3):
            continue
        producers, consumers, outputs = model.producers(), model.consumers(), model.output_names()
        found = [producers.get(name) for name in concat.inputs]
        convs = [conv for conv in found if conv is not None]
        if len(convs) != len(found) or len({id(conv) for conv in convs}) != len(convs):
            continue
        sizes = [
            _kernel_size(model, conv, name, consumers, outputs)
            for conv, name in zip(convs, concat.inputs, strict=True)
        ]
        if any(size is None for size in sizes) or len({conv.inputs[0] for conv in convs}) != 1:
            continue
        if len({tuple(conv.attrs.get(key) for key in FUSED_ATTRIBUTES) for conv in convs}) != 1:
            continue
        k = max(size for size in sizes if size is not None)
        weights, biases = [], []
        for conv in convs:
            w = model.graph.constants[conv.inputs[1]].astype(np.float32)
            margin = (k - w.shape[2]) // 2
            weights.append(np.pad(w, ((0, 0), (0, 0), (margin, margin), (margin, margin))))
            bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
            biases.append(
                model.graph.constants[bias].astype(np.float32) if bias else np.zeros(w.shape[0], np.float32)
            )
        first = convs[0]
        attrs = {key: first.attrs[key] for key in FUSED_ATTRIBUTES if key in first.attrs}
        attrs.update({"kernel_shape": [k, k], "pads": [k // 2] * 4})
        merged = Node(
            "Conv",
            concat.name,
            [
                first.inputs[0],
                model.add_constant(f"{concat.name}_weights", np.concatenate(weights)),
                model.add_constant(f"{concat.name}_bias", np.concatenate(biases)),
            ],
            list(concat.outputs),
            attrs,
        )
        nodes = model.graph.nodes
        nodes[nodes.index(concat)] = merged
        for conv in convs:
            nodes.remove(conv)
        changed = True
    return changed
