"""What a lowering works with: the ONNX node it lowers and the ``ImportContext`` it emits into.

Shared by the importer (which makes both and calls the lowerings) and the lowerings (which
read and emit through them). Kept apart so that the importer imports the lowerings and not
the other way round (no import cycles: tools/converter/tests/test_no_import_cycles.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from mace_cl.model.graph import Node

from mace_cl_converter.attributes import PyAttr
from mace_cl_converter.errors import ConversionError
from mace_cl_converter.input_shapes import Shape
from mace_cl_converter.model import Model
from mace_cl_converter.passes import constant_folding, shape_inference


@dataclass
class OnnxNode:
    """One ONNX node as the lowerings see it: attributes already read into Python."""

    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, PyAttr]
    opset: int


@dataclass
class PendingNode:
    """A node ``emit`` has not folded or placed yet: its attributes may still hold tensors."""

    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, PyAttr]


class ImportContext:
    def __init__(self, model: Model, consumed: set[str]) -> None:
        self.model = model
        self.consumed = consumed  # tensors some node or graph output reads

    def used(self, name: str) -> bool:
        return bool(name) and name in self.consumed

    @property
    def opset(self) -> int:
        return self.model.opset

    def where(self, node: OnnxNode) -> str:
        return f"{self.model.where}: node {node.name!r} ({node.op_type}, opset {node.opset})"

    def error(self, node: OnnxNode, message: str) -> ConversionError:
        return ConversionError(f"{self.where(node)}: {message}")

    def value(self, name: str) -> np.ndarray | None:
        return self.model.graph.constants.get(name) if name else None

    def shape(self, name: str, node: OnnxNode) -> Shape:
        value = self.value(name)
        if value is not None:
            return tuple(value.shape)
        if name not in self.model.shapes:
            producer = self.model.producers().get(name)
            cause = self.model.pending_errors.get(producer.name) if producer is not None else None
            raise self.error(
                node,
                f"the shape of input {name!r} is unknown: " + (cause or "an earlier node is unsupported"),
            )
        return self.model.shapes[name]

    def constant(self, hint: str, value: np.ndarray) -> str:
        return self.model.add_constant(hint, np.asarray(value))

    def temp(self, hint: str) -> str:
        return self.model.unique_name(hint)

    def emit(
        self,
        op_type: str,
        name: str,
        inputs: list[str],
        outputs: list[str],
        attrs: Mapping[str, PyAttr] | None = None,
    ) -> None:
        """Fold the node if its inputs are known, else plan it (shapes) and keep it."""
        pending = PendingNode(op_type, name, list(inputs), list(outputs), dict(attrs or {}))
        if constant_folding.try_fold(self.model, pending):
            return
        plain = {key: value for key, value in pending.attrs.items() if not isinstance(value, np.ndarray)}
        if len(plain) != len(pending.attrs):
            raise ConversionError(
                f"{self.model.where}: node {name!r} ({op_type}) has a tensor attribute and "
                "run-time inputs; only its constant form is supported"
            )
        node = Node(op_type, name, pending.inputs, pending.outputs, plain)
        shape_inference.infer_node(self.model, node)
        self.model.graph.nodes.append(node)
