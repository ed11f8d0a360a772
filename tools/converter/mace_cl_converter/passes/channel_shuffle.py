"""Channel shuffle (ShuffleNet): Reshape to rank 5 -> Transpose -> Reshape back.

The runtime stores at most rank 4, but the whole chain only permutes channels, which
a 1x1 Conv with a 0/1 permutation matrix does exactly (each output is one input
times 1.0 plus zeros). The pass checks that by pushing element indices through the
three ops, so any Reshape/Transpose/Reshape chain that is a channel permutation
qualifies.

The same probe recognises pixel shuffle (PyTorch's PixelShuffle exports Reshape to
rank 6 -> Transpose -> Reshape): a chain that moves elements exactly like
DepthToSpace (CRD or DCR mode) becomes that single op.
"""

from __future__ import annotations

import numpy as np
from mace_cl.model.graph import Node

from mace_cl_converter.attributes import as_ints
from mace_cl_converter.model import Model

_MAX_PROBE_ELEMENTS = 1 << 24


def _permutation(model: Model, first: Node, transpose: Node, last: Node) -> np.ndarray | None:
    in_shape = model.shapes.get(first.inputs[0])
    mid = model.shapes.get(first.outputs[0])
    out_shape = model.shapes.get(last.outputs[0])
    if in_shape is None or mid is None or out_shape != in_shape or len(in_shape) != 4:
        return None
    if int(np.prod(in_shape)) > _MAX_PROBE_ELEMENTS:
        return None
    index = np.arange(int(np.prod(in_shape))).reshape(in_shape)
    perm = transpose.attrs.get("perm")
    moved = np.transpose(index.reshape(mid), as_ints(perm) if isinstance(perm, list) else None).reshape(
        out_shape
    )
    # Channel c of the result must be a whole input channel p[c].
    _, c, h, w = in_shape
    source = moved // (h * w) % c
    p = source[0, :, 0, 0]
    if not np.array_equal(moved, index[:, p, :, :]):
        return None
    return p


def _depth_to_space_index(index: np.ndarray, block: int, mode: str) -> np.ndarray:
    n, c, h, w = index.shape
    if mode == "DCR":
        moved = index.reshape(n, block, block, c // block**2, h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        moved = index.reshape(n, c // block**2, block, block, h, w).transpose(0, 1, 4, 2, 5, 3)
    return moved.reshape(n, c // block**2, h * block, w * block)


def _depth_to_space(model: Model, first: Node, transpose: Node, last: Node) -> tuple[int, str] | None:
    """(blocksize, mode) when the chain equals DepthToSpace on its input, else None."""
    in_shape = model.shapes.get(first.inputs[0])
    mid = model.shapes.get(first.outputs[0])
    out_shape = model.shapes.get(last.outputs[0])
    if in_shape is None or mid is None or out_shape is None or len(in_shape) != 4 or len(out_shape) != 4:
        return None
    n, c, h, w = in_shape
    if out_shape[0] != n or out_shape[2] % h or out_shape[2] // h < 2:
        return None
    block = out_shape[2] // h
    if out_shape != (n, c // block**2, h * block, w * block) or c % (block * block):
        return None
    if int(np.prod(in_shape)) > _MAX_PROBE_ELEMENTS:
        return None
    index = np.arange(int(np.prod(in_shape))).reshape(in_shape)
    perm = transpose.attrs.get("perm")
    moved = np.transpose(index.reshape(mid), as_ints(perm) if isinstance(perm, list) else None).reshape(
        out_shape
    )
    for mode in ("CRD", "DCR"):
        if np.array_equal(moved, _depth_to_space_index(index, block, mode)):
            return block, mode
    return None


def run(model: Model) -> bool:
    changed = False
    for last in list(model.graph.nodes):
        if last.op_type != "Reshape":
            continue
        producers = model.producers()
        consumers = model.consumers()
        transpose = producers.get(last.inputs[0])
        if transpose is None or transpose.op_type != "Transpose":
            continue
        first = producers.get(transpose.inputs[0])
        if first is None or first.op_type != "Reshape":
            continue
        if len(consumers.get(first.outputs[0], [])) != 1 or len(consumers.get(transpose.outputs[0], [])) != 1:
            continue
        graph_outputs = model.output_names()
        if first.outputs[0] in graph_outputs or transpose.outputs[0] in graph_outputs:
            continue
        p = _permutation(model, first, transpose, last)
        if p is not None:
            channels = len(p)
            weights = np.zeros((channels, channels, 1, 1), np.float32)
            weights[np.arange(channels), p, 0, 0] = 1.0
            replacement = Node(
                "Conv",
                last.name,
                [first.inputs[0], model.add_constant(f"{last.name}_shuffle", weights)],
                list(last.outputs),
                {"kernel_shape": [1, 1]},
            )
        else:
            found = _depth_to_space(model, first, transpose, last)
            if found is None:
                continue
            replacement = Node(
                "DepthToSpace",
                last.name,
                [first.inputs[0]],
                list(last.outputs),
                {"blocksize": found[0], "mode": found[1]},
            )
        nodes = model.graph.nodes
        nodes[nodes.index(last)] = replacement
        nodes.remove(transpose)
        nodes.remove(first)
        changed = True
    return changed
