"""Batch-norm and bias folding: per-channel Mul/Add/Sub/Div by constants into Conv/Gemm.

BatchNormalization is imported as ``Mul(factor) -> Add(shift)`` with per-channel
constants; this pass folds such a Mul into the producer's weights and bias, and such an
Add (a bias, or BN's shift) into its bias, for Conv, ConvTranspose and Gemm producers
with constant weights whose output feeds nothing else. Standalone BNs (no such
producer) stay as Mul + Add, which the runtime's eltwise op runs directly.
Math is done in float64 and stored as float32.
"""

from __future__ import annotations

import numpy as np
from mace_cl.model.graph import Node

from mace_cl_converter.attributes import as_float, as_int
from mace_cl_converter.model import Model

PRODUCERS = ("Conv", "ConvTranspose", "Gemm")


def _channel_vector(value: np.ndarray, out_rank: int, channels: int, channel_axis: int) -> np.ndarray | None:
    """``value`` as a length-``channels`` vector if it only varies along ``channel_axis``
    of a rank-``out_rank`` output and does not broadcast the output to a bigger shape."""
    if value.ndim > out_rank:
        return None
    shape = (1,) * (out_rank - value.ndim) + tuple(value.shape)
    for axis, dim in enumerate(shape):
        if dim != 1 and (axis != channel_axis or dim != channels):
            return None
    return np.broadcast_to(
        value.astype(np.float64).reshape(-1) if value.size > 1 else value.astype(np.float64).reshape(1),
        (channels,),
    ).copy()


def _out_channels(node: Node, weights: np.ndarray) -> int:
    if node.op_type == "Conv":
        return weights.shape[0]
    if node.op_type == "ConvTranspose":
        return weights.shape[1] * as_int(node.attrs.get("group", 1))
    return weights.shape[0] if as_int(node.attrs.get("transB", 0)) else weights.shape[1]


def _scale_weights(node: Node, weights: np.ndarray, v: np.ndarray) -> np.ndarray:
    if node.op_type == "Conv":
        return weights * v.reshape((-1,) + (1,) * (weights.ndim - 1))
    if node.op_type == "ConvTranspose":
        group = as_int(node.attrs.get("group", 1))
        c_in, per_group = weights.shape[0], weights.shape[1]
        grouped = weights.reshape((group, c_in // group, per_group, *weights.shape[2:]))
        factors = v.reshape((group, 1, per_group) + (1,) * (weights.ndim - 2))
        return (grouped * factors).reshape(weights.shape)
    if as_int(node.attrs.get("transB", 0)):
        return weights * v[:, None]
    return weights * v[None, :]


def _try_fold(model: Model, producer: Node, consumer: Node) -> bool:
    constants = model.graph.constants
    if len(producer.inputs) < 2 or producer.inputs[1] not in constants or "activation" in producer.attrs:
        return False
    if producer.inputs[0] in constants:
        return False
    data, other = consumer.inputs
    if data != producer.outputs[0] or other not in constants:
        # Add/Mul commute: the constant may come first.
        if consumer.op_type in ("Add", "Mul") and other == producer.outputs[0] and data in constants:
            data, other = other, data
        else:
            return False
    out_shape = model.shapes.get(producer.outputs[0])
    if out_shape is None:
        return False
    weights = constants[producer.inputs[1]].astype(np.float64)
    channels = _out_channels(producer, weights)
    channel_axis = 1
    v = _channel_vector(constants[other], len(out_shape), channels, channel_axis)
    if v is None:
        return False
    op = consumer.op_type
    if op == "Div" and np.any(v == 0):
        return False
    if producer.op_type == "Gemm":
        alpha, beta = as_float(producer.attrs.get("alpha", 1.0)), as_float(producer.attrs.get("beta", 1.0))
        has_bias = len(producer.inputs) > 2 and producer.inputs[2] in constants
        if len(producer.inputs) > 2 and producer.inputs[2] and not has_bias:
            return False
        bias = constants[producer.inputs[2]].astype(np.float64) * beta if has_bias else np.zeros(channels)
        if bias.size in (1, channels) and (bias.ndim <= 1 or bias.shape[-1] == bias.size):
            bias_full = np.broadcast_to(bias.reshape(-1), (channels,)).copy()
        else:  # a full [M, N] (or [M, 1]) C stays a matrix
            bias_full = np.broadcast_to(bias, tuple(out_shape)).copy()
        weights = weights * alpha
        producer.attrs.update({"alpha": 1.0, "beta": 1.0})
    else:
        has_bias = len(producer.inputs) > 2 and bool(producer.inputs[2])
        if has_bias and producer.inputs[2] not in constants:
            return False
        bias_full = constants[producer.inputs[2]].astype(np.float64) if has_bias else np.zeros(channels)
    if op in ("Mul", "Div"):
        factor = v if op == "Mul" else 1.0 / v
        weights = _scale_weights(producer, weights, factor)
        bias_full = bias_full * factor
    else:
        bias_full = bias_full + (v if op == "Add" else -v)
    inputs = list(producer.inputs[:2])
    inputs.append(model.add_constant(f"{producer.name}_bias", bias_full.astype(np.float32)))
    inputs[1] = model.add_constant(f"{producer.name}_weights", weights.astype(np.float32))
    producer.inputs = inputs
    # The producer now writes the consumer's output.
    producer.outputs = [consumer.outputs[0]]
    model.graph.nodes.remove(consumer)
    return True


def run(model: Model) -> bool:
    changed = False
    progress = True
    while progress:
        progress = False
        producers = model.producers()
        consumers = model.consumers()
        graph_outputs = model.output_names()
        for node in list(model.graph.nodes):
            if node.op_type not in ("Mul", "Add", "Sub", "Div") or len(node.inputs) != 2:
                continue
            for name in node.inputs:
                producer = producers.get(name)
                if (
                    producer is not None
                    and producer.op_type in PRODUCERS
                    and len(consumers.get(name, [])) == 1
                    and name not in graph_outputs
                    and _try_fold(model, producer, node)
                ):
                    progress = changed = True
                    break
            if progress:
                break
    return changed
