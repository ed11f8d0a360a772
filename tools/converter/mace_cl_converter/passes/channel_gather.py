"""Chains of channel moves -> one ChannelGather per tensor that something else reads.

ShuffleNetV2 splits a tensor's channels (Split or two Slices), runs one half through a
branch, concatenates the halves back (Concat), shuffles the channels (a permutation Conv
since the channel_shuffle pass) and splits again in the next block: four to six copies
per block, each a launch. Every one of these ops only says, per output channel, which
channel of which input it is. When a tensor made by such an op is read only by such ops,
they can read its sources instead, and it need not exist: this pass composes those
channel maps and writes one internal ChannelGather (runtime op) per tensor that is read
by anything else. In ShuffleNetV2 the half that bypasses a block is then copied once,
into the tensor the next branch reads, instead of through every block's Concat.

A composed gather may read at most GATHER_MAX_INPUTS tensors; a map that would read
more reads the intermediate tensor instead, which is then kept. Slices with run-time
parameters and nodes whose gathers would read a channel past GATHER_INPUT_STRIDE are
left as they are.
"""

from __future__ import annotations

import math

import numpy as np
from mace_cl.model.graph import Node
from mace_cl.planning.ops.copy_kernels import GATHER_INPUT_STRIDE, GATHER_MAX_INPUTS

from mace_cl_converter.attributes import as_int, as_ints, is_plain_conv_window
from mace_cl_converter.model import Model

Channel = tuple[str, int]  # (tensor name, channel)


def _shape(model: Model, name: str) -> tuple[int, ...] | None:
    shape = model.shapes.get(name)
    return tuple(shape) if shape is not None and len(shape) == 4 else None


def _channel_axis(value: object) -> bool:
    return as_int(value) in (1, -3)  # type: ignore[arg-type]


def _ints_of(model: Model, node: Node, index: int, attr: str) -> list[int] | None:
    """Input ``index`` (a constant) or, in old opsets, attribute ``attr``; None if absent/run-time."""
    if len(node.inputs) > index:
        name = node.inputs[index]
        if not name:
            return None
        value = model.graph.constants.get(name)
        return None if value is None else [int(v) for v in np.asarray(value).reshape(-1)]
    raw = node.attrs.get(attr)
    return None if raw is None else as_ints(raw)


def _concat(model: Model, node: Node) -> list[list[Channel]] | None:
    if not _channel_axis(node.attrs.get("axis", 0)) or not node.inputs or not all(node.inputs):
        return None
    shapes = [_shape(model, name) for name in node.inputs]
    if any(shape is None for shape in shapes) or len({(s[0], s[2], s[3]) for s in shapes if s}) != 1:
        return None
    return [
        [(name, c) for name, shape in zip(node.inputs, shapes, strict=True) if shape for c in range(shape[1])]
    ]


def _slice(model: Model, node: Node) -> list[list[Channel]] | None:
    shape = _shape(model, node.inputs[0]) if node.inputs else None
    if shape is None or any(name and name not in model.graph.constants for name in node.inputs[1:]):
        return None  # run-time starts, ends, axes or steps
    starts, ends = _ints_of(model, node, 1, "starts"), _ints_of(model, node, 2, "ends")
    axes = _ints_of(model, node, 3, "axes") if len(node.inputs) > 3 or "axes" in node.attrs else None
    steps = _ints_of(model, node, 4, "steps") if len(node.inputs) > 4 else None
    if starts is None or ends is None or len(starts) != len(ends):
        return None
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    channel = None
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        axis %= 4
        size = shape[axis]
        first = min(max(start + size if start < 0 else start, 0), size)
        last = min(max(end + size if end < 0 else end, 0), size)
        if step != 1:
            return None
        if axis == 1:
            channel = (first, last)
        elif (first, last) != (0, size):
            return None
    if channel is None or channel[0] >= channel[1]:
        return None
    return [[(node.inputs[0], c) for c in range(*channel)]]


def _split(model: Model, node: Node) -> list[list[Channel]] | None:
    shape = _shape(model, node.inputs[0]) if node.inputs else None
    if shape is None or not _channel_axis(node.attrs.get("axis", 0)):
        return None
    count = len(node.outputs)
    sizes = _ints_of(model, node, 1, "split")
    if sizes is None and len(node.inputs) > 1 and node.inputs[1]:
        return None  # run-time split sizes
    if sizes is None:
        chunk = math.ceil(shape[1] / count) if "num_outputs" in node.attrs else shape[1] // count
        sizes = [min(chunk, shape[1] - i * chunk) for i in range(count)]
    if len(sizes) != count or sum(sizes) != shape[1] or min(sizes) <= 0:
        return None
    starts = np.cumsum([0, *sizes])
    return [[(node.inputs[0], c) for c in range(starts[i], starts[i + 1])] for i in range(count)]


def _permutation(model: Model, node: Node) -> list[list[Channel]] | None:
    """A 1x1 Conv that only permutes channels (what passes/channel_shuffle.py writes)."""
    if len(node.inputs) != 2 or any(key.startswith("activation") for key in node.attrs):
        return None
    weights = model.graph.constants.get(node.inputs[1])
    if (
        weights is None
        or weights.ndim != 4
        or weights.shape[2:] != (1, 1)
        or weights.shape[0] != weights.shape[1]
    ):
        return None
    if not is_plain_conv_window(node.attrs):
        return None
    matrix = weights.reshape(weights.shape[:2])
    source = np.argmax(matrix, axis=1)
    expected = np.zeros_like(matrix)
    expected[np.arange(len(source)), source] = 1
    if not np.array_equal(matrix, expected) or _shape(model, node.inputs[0]) is None:
        return None
    return [[(node.inputs[0], int(c)) for c in source]]


def _gather(model: Model, node: Node) -> list[list[Channel]] | None:
    shapes = [_shape(model, name) for name in node.inputs]
    if not shapes or any(shape is None for shape in shapes):
        return None
    flat = [
        (name, c) for name, shape in zip(node.inputs, shapes, strict=True) if shape for c in range(shape[1])
    ]
    return [[flat[index] for index in as_ints(node.attrs["channels"])]]


_MAPS = {
    "Concat": _concat,
    "Slice": _slice,
    "Split": _split,
    "Conv": _permutation,
    "ChannelGather": _gather,
}


def _channel_maps(model: Model, node: Node) -> list[list[Channel]] | None:
    """Per output, the (input tensor, channel) of each output channel; None for other ops."""
    reader = _MAPS.get(node.op_type)
    return None if reader is None else reader(model, node)


def _gather_node(model: Model, name: str, output: str, channels: list[Channel]) -> Node:
    sources = list(dict.fromkeys(tensor for tensor, _ in channels))
    starts, total = {}, 0
    for tensor in sources:
        starts[tensor] = total
        total += model.shapes[tensor][1]
    return Node("ChannelGather", name, sources, [output], {"channels": [starts[t] + c for t, c in channels]})


def run(model: Model) -> bool:
    direct: dict[int, list[list[Channel]]] = {}
    for node in model.graph.nodes:
        maps = _channel_maps(model, node)
        if maps is not None and len(maps) == len(node.outputs):
            direct[id(node)] = maps
    producers, consumers, outputs = model.producers(), model.consumers(), model.output_names()

    def bypassable(tensor: str) -> bool:
        # A tensor made by a channel move and read only by channel moves need not exist.
        producer = producers.get(tensor)
        return (
            producer is not None
            and id(producer) in direct
            and tensor not in outputs
            and all(id(reader) in direct for reader in consumers.get(tensor, []))
        )

    composed: dict[str, list[Channel]] = {}  # tensor -> its channels in terms of kept tensors
    rewrites: dict[int, list[list[Channel]]] = {}
    for node in model.graph.nodes:
        maps = direct.get(id(node))
        if maps is None:
            continue
        new_maps = []
        for output, channels in zip(node.outputs, maps, strict=True):
            through = [
                composed[tensor][c] if tensor in composed and bypassable(tensor) else (tensor, c)
                for tensor, c in channels
            ]
            if len({tensor for tensor, _ in through}) > GATHER_MAX_INPUTS:
                through = channels
            new_maps.append(through)
            if output:
                composed[output] = through
        # A node left as it is still makes its outputs, so maps composed through them stay valid.
        if new_maps != maps and all(c < GATHER_INPUT_STRIDE for m in new_maps for _, c in m):
            rewrites[id(node)] = new_maps
    if not rewrites:
        return False
    nodes: list[Node] = []
    for node in model.graph.nodes:
        maps = rewrites.get(id(node))
        if maps is None:
            nodes.append(node)
            continue
        for index, (output, channels) in enumerate(zip(node.outputs, maps, strict=True)):
            if output:
                suffix = f"_{index}" if len(node.outputs) > 1 else ""
                nodes.append(
                    _gather_node(model, model.unique_name(f"{node.name}{suffix}_gather"), output, channels)
                )
    model.graph.nodes[:] = nodes
    _drop_unread_split_outputs(model)
    return True


def _drop_unread_split_outputs(model: Model) -> None:
    """A Split whose bypassed part nobody reads now leaves that output unnamed: no launch."""
    consumers, outputs = model.consumers(), model.output_names()
    for node in model.graph.nodes:
        if node.op_type == "Split" and any(name and name not in consumers for name in node.outputs):
            node.outputs = [name if name in consumers or name in outputs else "" for name in node.outputs]
