"""Depthwise Conv -> 1x1 Conv pairs -> one internal SeparableConv node.

MobileNet and ShuffleNet blocks run a depthwise convolution whose output only the next
1x1 convolution reads. The runtime's SeparableConv computes the depthwise output as the
1x1's kernel reads it (mace_cl.planning.ops.separable_conv; on CPUs up to 96 output
channels): one launch where there were two, and the intermediate tensor never stored, which
counts where a launch costs more host time than its kernel runs (GPUs) and where the
depthwise convolution is bound by memory (CPUs).

The depthwise Conv must have group = input channels = output channels > 1, constant
weights, an optional constant bias and nothing more; its output read by the 1x1 Conv alone
and not a graph output. The 1x1 Conv must be group 1, stride 1, unpadded, with constant
weights, an optional constant bias and an optional residual (input 3), no input scale. The
depthwise Conv's fused activation moves to the node with the prefix ``depthwise_``. The
pass runs after activation fusion and after ``channel_gather`` (which looks for shuffle
Convs that this pass would otherwise hide).
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.ops.fused_activation import FUSED_ATTRIBUTES
from mace_cl.planning.ops.separable_conv import DEPTHWISE_PREFIX

from mace_cl_converter.attributes import as_int, is_plain_conv_window
from mace_cl_converter.model import Model


def is_depthwise(model: Model, conv: Node) -> bool:
    """Whether ``conv`` is a depthwise Conv (group = channels > 1) with constant weights and an
    optional constant bias, no other input."""
    if conv.op_type != "Conv" or not 2 <= len(conv.inputs) <= 3:
        return False
    weights = model.graph.constants.get(conv.inputs[1])
    shape = model.shapes.get(conv.inputs[0])
    if weights is None or weights.ndim != 4 or shape is None or len(shape) != 4:
        return False
    channels = shape[1]
    bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
    return (
        channels > 1
        and as_int(conv.attrs.get("group", 1)) == channels
        and weights.shape[:2] == (channels, 1)
        and (not bias or bias in model.graph.constants)
    )


def _pointwise(model: Model, conv: Node | None, source: str) -> bool:
    if conv is None or conv.op_type != "Conv" or not 2 <= len(conv.inputs) <= 4 or conv.inputs[0] != source:
        return False
    weights = model.graph.constants.get(conv.inputs[1])
    bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
    residual = conv.inputs[3] if len(conv.inputs) > 3 else ""
    if weights is None or weights.ndim != 4 or weights.shape[2:] != (1, 1):
        return False
    if (bias and bias not in model.graph.constants) or residual in model.graph.constants:
        return False
    return is_plain_conv_window(conv.attrs)


def run(model: Model) -> bool:
    changed = False
    for depthwise in list(model.graph.nodes):
        if not is_depthwise(model, depthwise):
            continue
        source = depthwise.outputs[0]
        consumers, outputs = model.consumers(), model.output_names()
        readers = consumers.get(source, [])
        if len(readers) != 1 or source in outputs:
            continue
        pointwise = readers[0]
        if not _pointwise(model, pointwise, source):
            continue
        attrs = {key: value for key, value in depthwise.attrs.items() if key not in FUSED_ATTRIBUTES}
        attrs.update(
            {
                DEPTHWISE_PREFIX + key: depthwise.attrs[key]
                for key in FUSED_ATTRIBUTES
                if key in depthwise.attrs
            }
        )
        attrs.update({key: pointwise.attrs[key] for key in FUSED_ATTRIBUTES if key in pointwise.attrs})
        dw_bias = depthwise.inputs[2] if len(depthwise.inputs) > 2 else ""
        inputs = [depthwise.inputs[0], depthwise.inputs[1], dw_bias, *pointwise.inputs[1:]]
        separable = Node("SeparableConv", pointwise.name, inputs, list(pointwise.outputs), attrs)
        nodes = model.graph.nodes
        nodes[nodes.index(pointwise)] = separable
        nodes.remove(depthwise)
        changed = True
    return changed
