"""ONNX ``AttributeProto`` -> plain Python values (the IR keeps attributes JSON-friendly)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from mace_cl.model.graph import is_int_list
from onnx import AttributeProto

from mace_cl_converter.tensors import read_tensor

# Python value of one attribute: what mace_cl.model.graph.AttrValue allows, plus tensors
# (``Constant``'s value, ``ConstantOfShape``'s value) that the importer turns into constants.
PyAttr = int | float | str | list[int] | list[float] | list[str] | np.ndarray


# Typed reads of one attribute value. The ONNX checker has matched every attribute's type to
# its op's schema before the converter reads it, so a TypeError here means a converter bug.


def as_int(value: PyAttr) -> int:
    """``int(value)`` of a single-valued attribute."""
    if isinstance(value, list):
        raise TypeError(f"expected one number, got the list {value!r}")
    return int(value)


def as_float(value: PyAttr) -> float:
    """``float(value)`` of a single-valued attribute."""
    if isinstance(value, list):
        raise TypeError(f"expected one number, got the list {value!r}")
    return float(value)


def as_ints(value: PyAttr) -> list[int]:
    """A list-of-ints attribute, as it is (not a copy)."""
    if not is_int_list(value):
        raise TypeError(f"expected a list of ints, got {value!r}")
    return value


def is_plain_conv_window(attrs: Mapping[str, PyAttr]) -> bool:
    """Whether a Conv's attributes leave its window plain: group 1, stride 1, no dilation and
    no padding (auto_pad NOTSET or VALID). A 1x1 Conv with them is a matrix product per pixel,
    which the passes that fold 1x1 Convs need."""
    if as_int(attrs.get("group", 1)) != 1 or attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return False
    defaults = (("strides", [1, 1]), ("dilations", [1, 1]), ("pads", [0, 0, 0, 0]))
    return all(as_ints(attrs.get(key, default)) == default for key, default in defaults)


def attribute_value(attr: AttributeProto, where: str) -> PyAttr:
    kind = attr.type
    if kind == AttributeProto.INT:
        return int(attr.i)
    if kind == AttributeProto.FLOAT:
        return float(attr.f)
    if kind in (AttributeProto.STRING, AttributeProto.STRINGS):
        try:
            return (
                attr.s.decode("utf-8")
                if kind == AttributeProto.STRING
                else [v.decode("utf-8") for v in attr.strings]
            )
        except UnicodeDecodeError:
            raise ValueError(
                f"{where}: attribute {attr.name!r} is not valid UTF-8 text; the file is corrupt"
            ) from None
    if kind == AttributeProto.INTS:
        return [int(v) for v in attr.ints]
    if kind == AttributeProto.FLOATS:
        return [float(v) for v in attr.floats]
    if kind == AttributeProto.TENSOR:
        # Raises ConversionError (a ValueError) naming the attribute if the tensor is corrupt.
        return read_tensor(attr.t, f"{where}: attribute {attr.name!r}")
    raise ValueError(
        f"{where}: attribute {attr.name!r} has type {AttributeProto.AttributeType.Name(kind)}, "
        "which the converter does not read (subgraphs and sparse tensors are not supported)"
    )


def node_attributes(node: onnx.NodeProto, where: str) -> dict[str, PyAttr]:
    return {attr.name: attribute_value(attr, where) for attr in node.attribute}
