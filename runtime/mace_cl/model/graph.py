"""In-memory graph IR shared by the converter, the build-time planner and the runtime.

Op types and attributes follow ONNX names and semantics (logical NCHW shapes).
Fused attributes (e.g. ``activation``) are added by the converter. Attributes must
stay JSON-serialisable because the graph is written into the model file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypeGuard

import numpy as np

from mace_cl.model.data_type import DATA_TYPES, DEFAULT_DATA_TYPE

AttrValue = int | float | str | list[int] | list[float] | list[str]

SUPPORTED_DTYPES = ("float32",)


def is_int_list(value: object) -> TypeGuard[list[int]]:
    """Whether ``value`` is a list of ints (bools, an int subclass, are not)."""
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


class GraphError(ValueError):
    """The graph is malformed (dangling tensor names, bad order, bad attributes)."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))


@dataclass
class Node:
    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, AttrValue] = field(default_factory=dict)


@dataclass
class Graph:
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    nodes: list[Node]
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    # The precision of tensors and weights on the device (mace_cl.model.data_type).
    data_type: str = DEFAULT_DATA_TYPE

    def validate(self) -> None:
        """Raise GraphError unless nodes are topologically ordered and every name resolves."""
        if self.data_type not in DATA_TYPES:
            raise GraphError(f"data type {self.data_type!r} is not one of {', '.join(DATA_TYPES)}")
        available: set[str] = set()
        for info in self.inputs:
            if info.name in available:
                raise GraphError(f"graph input {info.name!r} is declared twice")
            if info.dtype not in SUPPORTED_DTYPES:
                raise GraphError(
                    f"graph input {info.name!r} has dtype {info.dtype!r}; "
                    f"supported: {', '.join(SUPPORTED_DTYPES)}"
                )
            available.add(info.name)
        for name in self.constants:
            if name in available:
                raise GraphError(f"tensor {name!r} is both a graph input and a constant")
            available.add(name)
        node_names: set[str] = set()
        for node in self.nodes:
            if node.name in node_names:
                raise GraphError(f"node name {node.name!r} is used twice")
            node_names.add(node.name)
            for name in node.inputs:
                # "" marks an omitted optional input, as in ONNX.
                if name and name not in available:
                    raise GraphError(
                        f"node {node.name!r} ({node.op_type}) reads {name!r}, which is not a graph "
                        "input, a constant or an output of an earlier node (nodes must be in "
                        "topological order)"
                    )
            for name in node.outputs:
                if not name:
                    continue
                if name in available:
                    raise GraphError(f"tensor {name!r} is produced more than once")
                available.add(name)
            _check_attrs(node)
        for info in self.outputs:
            if info.name not in available:
                raise GraphError(f"graph output {info.name!r} is never produced")


def _check_attrs(node: Node) -> None:
    for key, value in node.attrs.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            # bool is an int subclass but does not round-trip as an ONNX attribute.
            if isinstance(item, bool) or not isinstance(item, (int, float, str)):
                raise GraphError(
                    f"node {node.name!r} attribute {key!r} has a value of type "
                    f"{type(item).__name__}; attributes must be int, float, str or lists of those"
                )
            # NaN/inf are not valid JSON; leave an attribute out to mean "unbounded".
            if isinstance(item, float) and not math.isfinite(item):
                raise GraphError(f"node {node.name!r} attribute {key!r} is {item}; use a finite value")
