"""Depthwise Conv -> SqueezeExcite -> one internal DepthwiseSqueezeExcite node.

MobileNetV3 and EfficientNet blocks gate a depthwise convolution's output with a
squeeze-excite (the 1x1 Conv after them reads the output and the gate). On GPUs the
runtime's DepthwiseSqueezeExcite pools the output as it computes it and finishes the gate
in the same launch (mace_cl.planning.ops.depthwise_squeeze_excite): one launch where there
were two, which counts where each launch costs more host time than its kernel runs.

The depthwise Conv must be as separable_conv takes it (group = channels > 1, constant
weights, an optional constant bias, nothing more). Its output may have other readers: it
stays the node's first output. Its fused activation moves to the node with the prefix
``depthwise_``. The pass runs after ``squeeze_excite``.
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.ops.depthwise_squeeze_excite import DEPTHWISE_PREFIX
from mace_cl.planning.ops.fused_activation import FUSED_ATTRIBUTES

from mace_cl_converter.model import Model
from mace_cl_converter.passes.separable_conv import is_depthwise


def run(model: Model) -> bool:
    changed = False
    for gate in list(model.graph.nodes):
        if gate.op_type != "SqueezeExcite":
            continue
        depthwise = model.producers().get(gate.inputs[0])
        if depthwise is None or not is_depthwise(model, depthwise):
            continue
        attrs = {key: value for key, value in depthwise.attrs.items() if key not in FUSED_ATTRIBUTES}
        attrs.update(
            {
                DEPTHWISE_PREFIX + key: depthwise.attrs[key]
                for key in FUSED_ATTRIBUTES
                if key in depthwise.attrs
            }
        )
        attrs.update(gate.attrs)
        dw_bias = depthwise.inputs[2] if len(depthwise.inputs) > 2 else ""
        inputs = [depthwise.inputs[0], depthwise.inputs[1], dw_bias, *gate.inputs[1:]]
        fused = Node(
            "DepthwiseSqueezeExcite",
            gate.name,
            inputs,
            [depthwise.outputs[0], gate.outputs[0]],
            attrs,
        )
        nodes = model.graph.nodes
        nodes[nodes.index(depthwise)] = fused
        nodes.remove(gate)
        changed = True
    return changed
