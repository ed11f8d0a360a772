"""Channel shuffle -> depthwise Conv -> one internal ShuffledDepthwiseConv node.

In ShuffleNet (v1) blocks a channel shuffle sits between the grouped 1x1 convolution and
the depthwise one; the channel_shuffle pass has made it a 1x1 Conv with a permutation
matrix. The runtime's ShuffledDepthwiseConv reads the depthwise input through the shuffle
on CPUs (mace_cl.planning.ops.shuffled_depthwise): one launch where there were two, the
shuffled tensor never stored. A depthwise kernel reads each input value once per tap, but
from registers mostly; in NHWC4 a shuffle must gather lanes, a pass of its own.

The shuffle Conv must move channel (c % g) * (C / g) + c // g to channel c for some
g in 2 .. C - 1 (a Reshape [N, g, C / g, H, W] -> Transpose of the two channel axes ->
Reshape back), with no bias or activation; its output read by the depthwise Conv alone and
not a graph output. The pass runs after separable_conv and depthwise_squeeze_excite: a
depthwise Conv they fused with what reads it keeps that fusion.
"""

from __future__ import annotations

import numpy as np
from mace_cl.model.graph import Node
from mace_cl.planning.ops.fused_activation import FUSED_ATTRIBUTES
from mace_cl.planning.ops.shuffled_depthwise import SHUFFLE_GROUPS, shuffle_source

from mace_cl_converter.attributes import is_plain_conv_window
from mace_cl_converter.model import Model
from mace_cl_converter.passes.separable_conv import is_depthwise


def shuffle_groups(model: Model, conv: Node) -> int | None:
    """g when ``conv`` is a 1x1 Conv that shuffles its input's channels in g groups."""
    if conv.op_type != "Conv" or len(conv.inputs) != 2 or any(key in conv.attrs for key in FUSED_ATTRIBUTES):
        return None
    weights = model.graph.constants.get(conv.inputs[1])
    if (
        weights is None
        or weights.ndim != 4
        or weights.shape[2:] != (1, 1)
        or not is_plain_conv_window(conv.attrs)
    ):
        return None
    channels = weights.shape[0]
    if weights.shape[1] != channels:
        return None
    matrix = weights[:, :, 0, 0]
    source = np.argmax(matrix, axis=1)
    if not np.array_equal(matrix, np.eye(channels, dtype=matrix.dtype)[source]):
        return None
    for groups in range(2, channels):
        if channels % groups == 0 and np.array_equal(source, shuffle_source(channels, groups)):
            return groups
    return None


def run(model: Model) -> bool:
    changed = False
    for depthwise in list(model.graph.nodes):
        if not is_depthwise(model, depthwise):
            continue
        shuffled = depthwise.inputs[0]
        shuffle = model.producers().get(shuffled)
        if (
            shuffle is None
            or len(model.consumers().get(shuffled, [])) != 1
            or shuffled in model.output_names()
        ):
            continue
        groups = shuffle_groups(model, shuffle)
        if groups is None:
            continue
        fused = Node(
            "ShuffledDepthwiseConv",
            depthwise.name,
            [shuffle.inputs[0], *depthwise.inputs[1:]],
            list(depthwise.outputs),
            {**depthwise.attrs, SHUFFLE_GROUPS: groups},
        )
        nodes = model.graph.nodes
        nodes[nodes.index(depthwise)] = fused
        nodes.remove(shuffle)
        changed = True
    return changed
