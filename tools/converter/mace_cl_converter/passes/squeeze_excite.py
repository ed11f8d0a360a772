"""Squeeze-excite gates -> one internal SqueezeExcite node.

MobileNetV3 and EfficientNet compute, per block, GlobalAveragePool -> 1x1 Conv
(activation) -> 1x1 Conv (a sigmoid-like activation): a per-channel gate from a few
thousand multiply-adds, in three to four launches whose cost is mostly launching. The
runtime's SqueezeExcite does all of it in one work-group per image (kernels/pooling.cl's
squeeze_excite; over many pixels a partial pooling launch comes first), or on GPUs in two
launches of many work-groups (se_squeeze, se_excite).

The pool must have no fused activation; each Conv must be a 1x1 (stride 1, no padding,
group 1) with constant weights and an optional constant bias, no residual or input scale,
and its input read by it alone (and not a graph output). The Convs' fused activations
move to the node: the first one's attributes with the prefix ``hidden_``. The pass runs
after ``fuse_activation`` and ``channel_scale`` (the gate then feeds a Conv's input scale).
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.ops.fused_activation import FUSED_ATTRIBUTES

from mace_cl_converter.attributes import is_plain_conv_window
from mace_cl_converter.model import Model

# Local memory of the kernel (a float4 per input channel block, a float per hidden value)
# stays within 48 KiB with these.
MAX_CHANNELS = 4096
MAX_HIDDEN = 1024


def _pointwise(model: Model, conv: Node | None, source: str, consumers: dict, outputs: set[str]) -> bool:
    """Whether ``conv`` is a foldable 1x1 Conv that alone reads ``source``."""
    if conv is None or conv.op_type != "Conv" or not 2 <= len(conv.inputs) <= 3 or conv.inputs[0] != source:
        return False
    if len(consumers.get(source, [])) != 1 or source in outputs:
        return False
    weights = model.graph.constants.get(conv.inputs[1])
    bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
    if weights is None or weights.ndim != 4 or weights.shape[2:] != (1, 1):
        return False
    if bias and bias not in model.graph.constants:
        return False
    return is_plain_conv_window(conv.attrs)


def run(model: Model) -> bool:
    changed = False
    for pool in list(model.graph.nodes):
        if pool.op_type != "GlobalAveragePool" or any(key in pool.attrs for key in FUSED_ATTRIBUTES):
            continue
        shape = model.shapes.get(pool.inputs[0])
        if shape is None or len(shape) != 4 or shape[1] > MAX_CHANNELS:
            continue
        consumers, outputs = model.consumers(), model.output_names()
        squeeze = next(iter(consumers.get(pool.outputs[0], [])), None)
        if not _pointwise(model, squeeze, pool.outputs[0], consumers, outputs):
            continue
        assert squeeze is not None
        excite = next(iter(consumers.get(squeeze.outputs[0], [])), None)
        if not _pointwise(model, excite, squeeze.outputs[0], consumers, outputs):
            continue
        assert excite is not None
        w1, w2 = model.graph.constants[squeeze.inputs[1]], model.graph.constants[excite.inputs[1]]
        if w1.shape[1] != shape[1] or w2.shape[1] != w1.shape[0] or w1.shape[0] > MAX_HIDDEN:
            continue
        attrs = {key: excite.attrs[key] for key in FUSED_ATTRIBUTES if key in excite.attrs}
        attrs.update(
            {f"hidden_{key}": squeeze.attrs[key] for key in FUSED_ATTRIBUTES if key in squeeze.attrs}
        )
        bias = [node.inputs[2] if len(node.inputs) > 2 else "" for node in (squeeze, excite)]
        gate = Node(
            "SqueezeExcite",
            excite.name,
            [pool.inputs[0], squeeze.inputs[1], bias[0], excite.inputs[1], bias[1]],
            list(excite.outputs),
            attrs,
        )
        nodes = model.graph.nodes
        nodes[nodes.index(excite)] = gate
        nodes.remove(squeeze)
        nodes.remove(pool)
        changed = True
    return changed
