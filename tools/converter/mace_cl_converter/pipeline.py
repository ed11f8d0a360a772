"""The conversion pipeline: import, transform passes, final checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from mace_cl.model.graph import Graph, GraphError
from mace_cl.planning.ops.base import OpError
from mace_cl.planning.ops.registry import planner_for
from mace_cl.planning.planner import PLAN_KINDS, plan_graph

from mace_cl_converter import supported_ops
from mace_cl_converter.errors import ConversionError, UnsupportedOpError
from mace_cl_converter.importer import import_model
from mace_cl_converter.input_shapes import Shape
from mace_cl_converter.loading import load_onnx
from mace_cl_converter.model import DEFAULT_MAX_CONSTANT_BYTES, Model
from mace_cl_converter.passes import (
    channel_gather,
    channel_scale,
    channel_shuffle,
    constant_folding,
    dead_nodes,
    depthwise_squeeze_excite,
    fold_affine,
    fuse_activation,
    fuse_residual,
    gather_conv,
    identity,
    merge_concat_convs,
    separable_conv,
    shape_inference,
    shuffle_depthwise,
    squeeze_excite,
    swish,
    transposes,
)
from mace_cl_converter.precision import DEFAULT_DATA_TYPE, apply_data_type

Pass = Callable[[Model], bool]

# Order matters: structure first (identities, shuffles, transposes), then folding of what
# that exposed, then BN/bias folding before activation fusion (a fused activation ends
# a chain: nothing folds past it), dead nodes last. Residual Adds fuse after the affine
# folding (a Mul folded into a Conv must not scale its residual) and before activation
# fusion (the Conv must not have an activation yet; one after the Add fuses next).
# Squeeze-excite scales fold into the Conv after that (fuse_residual wants at most three
# Conv inputs; the scale is input 4). Concatenated sibling Convs merge after activation
# fusion (their activations must agree), and so do squeeze-excite gates (their Convs'
# activations move into the gate). Channel moves compose next: a permutation Conv
# qualifies only without a fused activation, and merged Convs leave fewer Concats; a
# gather that only a 1x1 Conv reads then joins it.
# Depthwise -> 1x1 Conv pairs fuse last, so that no shuffle Conv hides in one, then
# depthwise Convs with the squeeze-excite gates that read them (after squeeze_excite),
# then shuffles into the depthwise Convs left (those fusions are kept where both apply).
PASSES: list[tuple[str, Pass]] = [
    ("identity", identity.run),
    ("channel_shuffle", channel_shuffle.run),
    ("transposes", transposes.run),
    ("constant_folding", constant_folding.run),
    ("fold_affine", fold_affine.run),
    ("swish", swish.run),
    ("fuse_residual", fuse_residual.run),
    ("channel_scale", channel_scale.run),
    ("fuse_activation", fuse_activation.run),
    ("merge_concat_convs", merge_concat_convs.run),
    ("squeeze_excite", squeeze_excite.run),
    ("channel_gather", channel_gather.run),
    ("gather_conv", gather_conv.run),
    ("separable_conv", separable_conv.run),
    ("depthwise_squeeze_excite", depthwise_squeeze_excite.run),
    ("shuffle_depthwise", shuffle_depthwise.run),
    ("dead_nodes", dead_nodes.run),
]

# Model files store these constant dtypes (mace_cl.model.model_file.CONSTANT_DTYPES); others are cast.
_CONSTANT_CASTS = {
    "float64": np.float32,
    "float16": np.float32,  # folded from half tensors; apply_data_type decides what is stored
    "int16": np.int32,
    "uint16": np.int32,
    "uint32": np.int64,
    "uint64": np.int64,
}


def convert_model(
    model: onnx.ModelProto | str | Path,
    input_shapes: Mapping[str, Shape] | None = None,
    *,
    where: str | None = None,
    max_constant_bytes: int = DEFAULT_MAX_CONSTANT_BYTES,
    data_files: Sequence[str | Path] | None = None,
    data_type: str = DEFAULT_DATA_TYPE,
) -> Graph:
    """ONNX model (proto or file) -> validated runtime ``Graph``.

    ``max_constant_bytes`` bounds every constant folding makes (checked before allocating).
    ``data_files``: for a model file, the only files its external data may be read from.
    ``data_type``: "fp32", or "fp16_fp32" to store float weights as float16 (precision.py).
    """
    if isinstance(model, (str, Path)):
        where = where or str(model)
        proto = load_onnx(model, data_files)
    else:
        proto = model
        where = where or (model.graph.name or "model")
    working = import_model(proto, dict(input_shapes or {}), where, max_constant_bytes)
    for _name, run in PASSES:
        run(working)
        # Passes up to constant folding change shapes or expose new constants; the later
        # ones rewrite nodes in place (same output tensors and shapes), so no re-inference:
        # the final graph is planned once, by _final_checks.
        if _name in ("identity", "channel_shuffle", "transposes", "constant_folding"):
            shape_inference.infer_shapes(working)
    _normalise_constants(working)
    apply_data_type(working, data_type)
    _final_checks(working)
    return working.graph


def _normalise_constants(model: Model) -> None:
    for name, value in model.graph.constants.items():
        target = _CONSTANT_CASTS.get(value.dtype.name)
        if target is not None:
            model.graph.constants[name] = value.astype(target)
        elif not value.flags.c_contiguous:
            model.graph.constants[name] = np.ascontiguousarray(value)


def _final_checks(model: Model) -> None:
    graph = model.graph
    for info in graph.outputs:
        if info.name in graph.constants:
            raise ConversionError(
                f"{model.where}: graph output {info.name!r} is a constant after folding; "
                "the runtime computes outputs only (remove that output or feed the model an input it depends on)"
            )
    for node in graph.nodes:
        if planner_for(node.op_type) is None:
            folded_only = node.op_type in supported_ops.constant_only_ops()
            reason = (
                f"{node.op_type} is supported on constant inputs only, and this one reads a run-time tensor"
                if folded_only
                else f"op {node.op_type} is not supported"
            )
            raise UnsupportedOpError(
                f"{model.where}: node {node.name!r} ({node.op_type}, opset {model.opset}): {reason}. "
                + supported_ops.describe()
            )
        if node.name in model.pending_errors:
            raise ConversionError(f"{model.where}: {model.pending_errors[node.name]} (opset {model.opset})")
    try:
        # Ops choose kernels per device kind, but reject nodes (OpError) before choosing,
        # so one kind validates for all (kernels/tests plan every test under each kind).
        plan_graph(graph, device_kind=PLAN_KINDS[0])
    except (OpError, GraphError) as exc:
        raise ConversionError(f"{model.where}: {exc} (opset {model.opset})") from None
