"""Per-op import: rewrite each ONNX node into the runtime's node forms.

The stored graph uses the newest opset's form of every op: parameters that older
opsets gave as attributes (Squeeze/Unsqueeze/Split/Slice/Pad/Clip/Reduce* axes...)
become constant inputs, by the runtime's table of them (op_inputs.MOVED_TO_INPUTS, which
says why it lives there and who applies it), and ops whose meaning changed between
versions are rewritten here, where the opset is known (Softmax < 13 coerces to 2-D,
BatchNormalization becomes per-channel Mul + Add, Upsample and Resize-10 become Resize
with their asymmetric coordinates).
Ops without a lowering pass through unchanged; the runtime (or constant folding)
must then handle them, which the pipeline checks at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from mace_cl.planning.ops.op_inputs import MOVED_TO_INPUTS
from onnx import helper

from mace_cl_converter.attributes import as_float, as_int
from mace_cl_converter.import_context import ImportContext, OnnxNode
from mace_cl_converter.tensors import check_finite

Lowering = Callable[[ImportContext, OnnxNode], None]
LOWERINGS: dict[str, Lowering] = {}
# Op types whose lowering turns them into *other* runtime ops (or a constant, or nothing):
# the converter supports them whatever the runtime has. The other lowerings only rewrite
# an op into its newest form, so such an op counts as supported only if the runtime has it.
_INTO_OTHER_OPS: set[str] = set()


def _lowers(*op_types: str, into_other_ops: bool = False) -> Callable[[Lowering], Lowering]:
    """Register the decorated lowering for ``op_types``; ``into_other_ops``: it never emits
    the op itself (see ``lowered_op_types``)."""

    def decorate(fn: Lowering) -> Lowering:
        for op_type in op_types:
            LOWERINGS[op_type] = fn
            if into_other_ops:
                _INTO_OTHER_OPS.add(op_type)
        return fn

    return decorate


def lower_node(ctx: ImportContext, node: OnnxNode) -> None:
    LOWERINGS.get(node.op_type, _passthrough)(ctx, node)


def lowered_op_types() -> list[str]:
    """ONNX ops the importer rewrites into other runtime ops (``_lowers(..., into_other_ops=True)``)."""
    return sorted(_INTO_OTHER_OPS)


def _passthrough(ctx: ImportContext, node: OnnxNode) -> None:
    ctx.emit(node.op_type, node.name, node.inputs, node.outputs, node.attrs)


def _inputs_with(inputs: list[str], index: int, name: str) -> list[str]:
    """``inputs`` with input ``index`` set to ``name`` (padding with omitted inputs)."""
    inputs = list(inputs) + [""] * max(0, index + 1 - len(inputs))
    inputs[index] = name
    while inputs and not inputs[-1]:
        inputs.pop()
    return inputs


def _moved_to_inputs(ctx: ImportContext, node: OnnxNode) -> list[str]:
    """``node.inputs`` with each attribute that newer opsets take as an input
    (op_inputs.MOVED_TO_INPUTS) moved there as a constant; ``node.attrs`` loses it."""
    inputs = list(node.inputs)
    for moved in MOVED_TO_INPUTS.get(node.op_type, ()):
        if moved.attr in node.attrs:
            dtype = np.int64 if moved.kind == "ints" else np.float32
            value = np.asarray(node.attrs.pop(moved.attr), dtype=dtype)
            inputs = _inputs_with(inputs, moved.index, ctx.constant(f"{node.name}_{moved.attr}", value))
    return inputs


# ---- constants, identities ----------------------------------------------------------


@_lowers("Constant", into_other_ops=True)
def _constant(ctx: ImportContext, node: OnnxNode) -> None:
    kinds = {
        "value": None,
        "value_float": np.float32,
        "value_floats": np.float32,
        "value_int": np.int64,
        "value_ints": np.int64,
    }
    for key, dtype in kinds.items():
        if key in node.attrs:
            value = np.asarray(node.attrs[key], dtype=dtype)
            # Like initializers: refuse NaN/Inf here, under the node's name, not later
            # under the name of whatever constant it was folded into.
            check_finite(value, f"{ctx.where(node)}: attribute {key!r}")
            ctx.model.graph.constants[node.outputs[0]] = value
            return
    raise ctx.error(
        node, f"needs one of the attributes {', '.join(kinds)} (strings and sparse values are not supported)"
    )


@_lowers("Identity", into_other_ops=True)
def _identity(ctx: ImportContext, node: OnnxNode) -> None:
    ctx.emit("Identity", node.name, node.inputs[:1], node.outputs[:1])


@_lowers("Dropout", into_other_ops=True)
def _dropout(ctx: ImportContext, node: OnnxNode) -> None:
    if len(node.outputs) > 1 and ctx.used(node.outputs[1]):
        raise ctx.error(node, "the mask output is used; at inference Dropout has no mask, remove that use")
    training = ctx.value(node.inputs[2]) if len(node.inputs) > 2 else None
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        raise ctx.error(node, "training_mode is true; only inference (identity) Dropout is supported")
    if len(node.inputs) > 2 and node.inputs[2] and training is None:
        raise ctx.error(node, "training_mode is computed at run time; it must be a constant")
    ctx.emit("Identity", node.name, node.inputs[:1], node.outputs[:1])


@_lowers("Cast", into_other_ops=True)
def _cast(ctx: ImportContext, node: OnnxNode) -> None:
    if ctx.value(node.inputs[0]) is not None:
        _passthrough(ctx, node)  # folds
        return
    target = helper.tensor_dtype_to_np_dtype(as_int(node.attrs["to"]))
    # Run-time tensors are float32; a cast to float16 (models exported in half) keeps them
    # float32, which is at least as precise.
    if target not in (np.float32, np.float16):
        raise ctx.error(node, f"casts a run-time tensor to {target}; run-time tensors are float32 only")
    ctx.emit("Identity", node.name, node.inputs[:1], node.outputs[:1])


# ---- ops whose semantics changed between opsets -----------------------------------


@_lowers("BatchNormalization", into_other_ops=True)
def _batch_norm(ctx: ImportContext, node: OnnxNode) -> None:
    """Inference BN = per-channel affine y = x * s + t; later passes fold it into Conv/Gemm."""
    if any(ctx.used(name) for name in node.outputs[1:]):
        raise ctx.error(
            node,
            "uses the training outputs (running mean/var); only inference BatchNormalization is supported",
        )
    if as_int(node.attrs.get("training_mode", 0)):
        raise ctx.error(node, "training_mode=1 is not supported; export the model in eval mode")
    if node.opset < 9 and as_int(node.attrs.get("spatial", 1)) == 0:
        raise ctx.error(node, "spatial=0 (per-activation statistics) is not supported")
    if len(node.inputs) < 5:
        raise ctx.error(node, f"has {len(node.inputs)} inputs; X, scale, B, mean and var are needed")
    shape = ctx.shape(node.inputs[0], node)
    if len(shape) < 2:
        raise ctx.error(
            node, f"the input {node.inputs[0]!r} has shape {list(shape)}; it needs a channel axis (rank >= 2)"
        )
    channels = shape[1]
    params = []
    for index, what in enumerate(("scale", "bias", "mean", "var"), start=1):
        value = ctx.value(node.inputs[index])
        if value is None:
            raise ctx.error(node, f"the {what} input {node.inputs[index]!r} must be a constant")
        value = np.asarray(value)
        if value.dtype.kind not in "fiub":
            raise ctx.error(
                node, f"the {what} input {node.inputs[index]!r} has dtype {value.dtype}; it must be numeric"
            )
        # One value per channel (ONNX: shape [C]); a single value is broadcast. Anything
        # else cannot be a per-channel affine and would fail later with a numpy error.
        if value.size not in (1, channels):
            raise ctx.error(
                node,
                f"the {what} input {node.inputs[index]!r} has {value.size} values, but the input "
                f"{node.inputs[0]!r} has {channels} channels; give one {what} value per channel",
            )
        params.append(np.broadcast_to(value.astype(np.float64).reshape(-1), (channels,)))
    scale, bias, mean, var = params
    eps = as_float(node.attrs.get("epsilon", 1e-5))
    with np.errstate(all="ignore"):  # checked just below, with a message naming the node
        factor = scale / np.sqrt(var + eps)
        shift = bias - mean * factor
    if not (np.all(np.isfinite(factor)) and np.all(np.isfinite(shift))):
        # Folded into the Conv/Gemm weights, this would reach the model file as a constant
        # the user never named; say which parameters are to blame instead.
        if not np.all(var + eps > 0) or not np.isfinite(eps):
            cause = (
                f"var + epsilon is not positive for some channel (epsilon={eps}, smallest var "
                f"{float(var.min())}); check the exported running variance and epsilon"
            )
        else:
            cause = (
                "scale / sqrt(var + epsilon) or the shift overflows; check the exported scale, mean and bias"
            )
        raise ctx.error(node, f"folding gives NaN or infinite values: {cause}")
    emit_channel_affine(ctx, node, node.inputs[0], node.outputs[0], factor, shift)


def emit_channel_affine(
    ctx: ImportContext, node: OnnxNode, x: str, y: str, factor: np.ndarray, shift: np.ndarray
) -> None:
    """y = x * factor[c] + shift[c] over axis 1 of x, as Mul + Add with [C, 1, ...] constants."""
    rank = len(ctx.shape(x, node))
    if rank < 2:
        raise ctx.error(node, "the input must have a channel axis (rank >= 2)")
    per_channel = (-1,) + (1,) * (rank - 2)
    scaled = ctx.temp(f"{node.name}_scaled")
    ctx.emit(
        "Mul",
        node.name,
        [x, ctx.constant(f"{node.name}_factor", factor.astype(np.float32).reshape(per_channel))],
        [scaled],
    )
    ctx.emit(
        "Add",
        ctx.temp(f"{node.name}_shift"),
        [scaled, ctx.constant(f"{node.name}_shift", shift.astype(np.float32).reshape(per_channel))],
        [y],
    )


@_lowers("Softmax", "LogSoftmax")
def _softmax(ctx: ImportContext, node: OnnxNode) -> None:
    """Before opset 13, softmax flattens the input to 2-D at ``axis`` (default 1)."""
    if node.opset >= 13:
        _passthrough(ctx, node)
        return
    shape = ctx.shape(node.inputs[0], node)
    rank = len(shape)
    axis = as_int(node.attrs.get("axis", 1))
    axis = axis + rank if axis < 0 else axis
    if axis == rank - 1:
        ctx.emit(node.op_type, node.name, node.inputs, node.outputs, {"axis": -1})
        return
    flat = ctx.temp(f"{node.name}_2d")
    soft = ctx.temp(f"{node.name}_soft")
    rows, cols = math.prod(shape[:axis]), math.prod(shape[axis:])
    ctx.emit(
        "Reshape",
        ctx.temp(f"{node.name}_flatten"),
        [node.inputs[0], ctx.constant("shape", np.array([rows, cols], np.int64))],
        [flat],
    )
    ctx.emit(node.op_type, node.name, [flat], [soft], {"axis": -1})
    ctx.emit(
        "Reshape",
        ctx.temp(f"{node.name}_restore"),
        [soft, ctx.constant("shape", np.array(shape, np.int64))],
        node.outputs[:1],
    )


@_lowers("Upsample", into_other_ops=True)
def _upsample(ctx: ImportContext, node: OnnxNode) -> None:
    """Upsample (7: scales attribute, 9: scales input) == Resize with asymmetric coordinates."""
    _resize_asymmetric(ctx, node, _moved_to_inputs(ctx, node)[1])


@_lowers("Resize")
def _resize(ctx: ImportContext, node: OnnxNode) -> None:
    if node.opset >= 11:
        _passthrough(ctx, node)
        return
    _resize_asymmetric(ctx, node, node.inputs[1])  # Resize-10: X, scales


def _resize_asymmetric(ctx: ImportContext, node: OnnxNode, scales: str) -> None:
    # Known difference: where Resize-10 shrinks an axis, onnxruntime (and the runtime's own
    # legacy path for a two-input Resize, ops/resize.py) pick the nearest pixel by ceiling,
    # not by flooring as nearest_mode "floor" here does.
    mode = str(node.attrs.get("mode", "nearest"))
    attrs: dict = {"mode": mode, "coordinate_transformation_mode": "asymmetric"}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    ctx.emit("Resize", node.name, [node.inputs[0], "", scales], node.outputs, attrs)


# ---- attribute -> input (newest form) ----------------------------------------------


# Upsample has its own lowering (above): it becomes a Resize.
@_lowers(*(op_type for op_type in MOVED_TO_INPUTS if op_type != "Upsample"))
def _newest_form(ctx: ImportContext, node: OnnxNode) -> None:
    """The op itself, with the attributes of older opsets moved to its inputs."""
    inputs = _moved_to_inputs(ctx, node)
    ctx.emit(node.op_type, node.name, inputs, node.outputs, node.attrs)


# ---- ops expressed with runtime ops ------------------------------------------------


@_lowers("Mean", into_other_ops=True)
def _mean(ctx: ImportContext, node: OnnxNode) -> None:
    if len(node.inputs) == 1:
        ctx.emit("Identity", node.name, node.inputs, node.outputs)
        return
    total = ctx.temp(f"{node.name}_sum")
    ctx.emit("Sum", node.name, node.inputs, [total])
    scale = ctx.constant(f"{node.name}_inv_n", np.array(1.0 / len(node.inputs), np.float32))
    ctx.emit("Mul", ctx.temp(f"{node.name}_scale"), [total, scale], node.outputs)


@_lowers("Neg", into_other_ops=True)
def _neg(ctx: ImportContext, node: OnnxNode) -> None:
    if ctx.value(node.inputs[0]) is not None:
        _passthrough(ctx, node)
        return
    ctx.emit(
        "Mul",
        node.name,
        [node.inputs[0], ctx.constant("minus_one", np.array(-1.0, np.float32))],
        node.outputs,
    )


@_lowers("Selu", into_other_ops=True)
def _selu(ctx: ImportContext, node: OnnxNode) -> None:
    """Selu(x) = gamma * Elu(x, alpha)."""
    alpha = as_float(node.attrs.get("alpha", 1.67326319217681884765625))
    gamma = as_float(node.attrs.get("gamma", 1.05070102214813232421875))
    elu = ctx.temp(f"{node.name}_elu")
    ctx.emit("Elu", node.name, node.inputs, [elu], {"alpha": alpha})
    ctx.emit(
        "Mul",
        ctx.temp(f"{node.name}_gamma"),
        [elu, ctx.constant("gamma", np.array(gamma, np.float32))],
        node.outputs,
    )
