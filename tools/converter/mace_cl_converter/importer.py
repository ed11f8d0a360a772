"""ONNX graph -> converter ``Model``: constants, inputs, and each node through its lowering.

Nodes are imported in order. Each emitted node is folded at once when its inputs are
known (constant folding) or else planned by the runtime (shape inference), so later
lowerings can read the shapes and values they need (e.g. the rank of a Softmax input).
"""

from __future__ import annotations

from collections.abc import Mapping

import onnx
from mace_cl.model.graph import Graph, TensorInfo
from onnx import TensorProto

from mace_cl_converter.attributes import node_attributes
from mace_cl_converter.errors import ConversionError, UnsupportedOpError
from mace_cl_converter.import_context import ImportContext, OnnxNode
from mace_cl_converter.input_shapes import Shape, resolve_input_shapes
from mace_cl_converter.loading import DEFAULT_DOMAINS, check_model
from mace_cl_converter.lowerings import lower_node
from mace_cl_converter.model import DEFAULT_MAX_CONSTANT_BYTES, Model
from mace_cl_converter.tensors import check_finite, dtype_name, read_tensor


def import_model(
    proto: onnx.ModelProto,
    input_shapes: Mapping[str, Shape],
    where: str,
    max_constant_bytes: int = DEFAULT_MAX_CONSTANT_BYTES,
) -> Model:
    opset = check_model(proto, where)
    graph = proto.graph
    if graph.sparse_initializer:
        raise ConversionError(f"{where}: sparse initializers are not supported; store weights densely")
    constants = {}
    for init in graph.initializer:
        # Checked here, under the ONNX name: after folding, a bad weight would surface in
        # a constant the converter made (e.g. 'conv_weights__7') that the user cannot find.
        what = f"{where}: initializer {init.name!r}"
        value = read_tensor(init, what)
        check_finite(value, what)
        constants[init.name] = value
    # Before IR 4 initializers were also listed as inputs; such inputs are weights, not feeds.
    real_inputs = [info for info in graph.input if info.name not in constants]
    for info in real_inputs:
        _check_float(info, "input", where)
    shapes = resolve_input_shapes(real_inputs, input_shapes, where)
    outputs = []
    for info in graph.output:
        _check_float(info, "output", where)
        outputs.append(TensorInfo(info.name, ()))
    model = Model(
        graph=Graph(
            inputs=[TensorInfo(name, shape) for name, shape in shapes.items()],
            outputs=outputs,
            nodes=[],
            constants=constants,
        ),
        opset=opset,
        where=where,
        max_constant_bytes=max_constant_bytes,
    )
    model.shapes = dict(shapes)
    consumed = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    context = ImportContext(model, consumed)
    used_names: set[str] = set()
    for index, proto_node in enumerate(graph.node):
        name = proto_node.name or f"{proto_node.op_type}_{index}"
        if name in used_names:
            name = f"{name}_{index}"
        used_names.add(name)
        if proto_node.domain not in DEFAULT_DOMAINS:
            raise UnsupportedOpError(
                f"{where}: node {name!r} ({proto_node.domain}.{proto_node.op_type}) is from operator "
                f"domain {proto_node.domain!r}; only the default ONNX domain is supported"
            )
        try:
            attrs = node_attributes(proto_node, f"{where}: node {name!r}")
        except ValueError as exc:
            raise ConversionError(str(exc)) from None
        node = OnnxNode(
            proto_node.op_type, name, list(proto_node.input), list(proto_node.output), attrs, opset
        )
        lower_node(context, node)
    return model


def _check_float(info: onnx.ValueInfoProto, what: str, where: str) -> None:
    elem = info.type.tensor_type.elem_type
    # FLOAT16 (a model exported in half) is exchanged as float32 at the runtime's API, which
    # holds every half value; the runtime computes in float32 either way.
    if info.type.HasField("tensor_type") and elem in (
        TensorProto.FLOAT,
        TensorProto.FLOAT16,
        TensorProto.UNDEFINED,
    ):
        return
    kind = dtype_name(elem) if info.type.HasField("tensor_type") else "a non-tensor type"
    raise ConversionError(
        f"{where}: graph {what} {info.name!r} is {kind}; the runtime exchanges float32 tensors only "
        "(FLOAT16 ones are exchanged as float32)"
        + (" (make non-float inputs initializers, i.e. constants of the model)" if what == "input" else "")
    )
