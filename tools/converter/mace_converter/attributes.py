"""ONNX ``AttributeProto`` -> plain Python values (the IR keeps attributes JSON-friendly)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import AttributeProto, numpy_helper

# Python value of one attribute: what mace.graph.AttrValue allows, plus tensors
# (``Constant``'s value, ``ConstantOfShape``'s value) that the importer turns into constants.
PyAttr = int | float | str | list[int] | list[float] | list[str] | np.ndarray


def attribute_value(attr: AttributeProto, where: str) -> PyAttr:
    kind = attr.type
    if kind == AttributeProto.INT:
        return int(attr.i)
    if kind == AttributeProto.FLOAT:
        return float(attr.f)
    if kind == AttributeProto.STRING:
        return attr.s.decode("utf-8")
    if kind == AttributeProto.INTS:
        return [int(v) for v in attr.ints]
    if kind == AttributeProto.FLOATS:
        return [float(v) for v in attr.floats]
    if kind == AttributeProto.STRINGS:
        return [v.decode("utf-8") for v in attr.strings]
    if kind == AttributeProto.TENSOR:
        return numpy_helper.to_array(attr.t)
    raise ValueError(
        f"{where}: attribute {attr.name!r} has type {AttributeProto.AttributeType.Name(kind)}, "
        "which the converter does not read (subgraphs and sparse tensors are not supported)"
    )


def node_attributes(node: onnx.NodeProto, where: str) -> dict[str, PyAttr]:
    return {attr.name: attribute_value(attr, where) for attr in node.attribute}
