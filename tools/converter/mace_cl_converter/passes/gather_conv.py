"""ChannelGather -> 1x1 Conv -> one internal GatherConv node.

In ShuffleNetV2 each block's branch starts with a 1x1 Conv of the channels that the
previous blocks' splits, concatenations and shuffles picked, which the channel_gather pass
has made one ChannelGather. On GPUs the runtime's GatherConv reads those channels from
their sources as its tiled kernel loads them (mace_cl.planning.ops.gather_conv): one launch
where there were two, which counts where each launch costs more host time than its kernel
runs.

The gather's sources must be run-time tensors, its output read by the Conv alone and not
a graph output; the Conv
must be a 1x1 (stride 1, no padding, group 1) with constant weights, an optional constant
bias, no residual or input scale. The Conv's fused activation moves to the node. The pass
runs after ``channel_gather``.
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.ops.fused_activation import FUSED_ATTRIBUTES

from mace_cl_converter.attributes import as_int, is_plain_conv_window
from mace_cl_converter.model import Model


def _pointwise(model: Model, conv: Node) -> bool:
    if conv.op_type != "Conv" or not 2 <= len(conv.inputs) <= 3:
        return False
    weights = model.graph.constants.get(conv.inputs[1])
    bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
    return (
        weights is not None
        and weights.ndim == 4
        and weights.shape[2:] == (1, 1)
        and as_int(conv.attrs.get("group", 1)) == 1
        and (not bias or bias in model.graph.constants)
        and is_plain_conv_window(conv.attrs)
    )


def run(model: Model) -> bool:
    changed = False
    for gather in list(model.graph.nodes):
        if gather.op_type != "ChannelGather":
            continue
        source = gather.outputs[0]
        readers = model.consumers().get(source, [])
        if len(readers) != 1 or source in model.output_names():
            continue
        conv = readers[0]
        if conv.inputs[0] != source or not _pointwise(model, conv):
            continue
        if any(name in model.graph.constants for name in gather.inputs):
            continue  # a constant source: the tiled kernel reads tensors only
        bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
        attrs = {"channels": gather.attrs["channels"]}
        attrs.update({key: conv.attrs[key] for key in FUSED_ATTRIBUTES if key in conv.attrs})
        fused = Node(
            "GatherConv", conv.name, [*gather.inputs, conv.inputs[1], bias], list(conv.outputs), attrs
        )
        nodes = model.graph.nodes
        nodes[nodes.index(conv)] = fused
        nodes.remove(gather)
        changed = True
    return changed
