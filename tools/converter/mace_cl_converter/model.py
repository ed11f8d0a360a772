"""The converter's working state: a ``mace_cl.model.graph.Graph`` plus what conversion needs on top.

Nodes use ONNX op types and attributes at the *newest* opset's semantics (the importer
rewrites older forms), so passes and the runtime see one form per op.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from mace_cl.model.graph import Graph, Node

Shape = tuple[int, ...]

# 1 GiB: above any real model's folded tensors, below what breaks a build machine.
DEFAULT_MAX_CONSTANT_BYTES = 1 << 30


@dataclass
class Model:
    graph: Graph
    opset: int  # default-domain opset of the source model (for messages)
    where: str  # file or model name, first word of every error
    shapes: dict[str, Shape] = field(default_factory=dict)  # run-time tensors
    # The largest constant folding may make.
    max_constant_bytes: int = DEFAULT_MAX_CONSTANT_BYTES
    # Planning errors of nodes kept anyway because a later pass may rewrite them
    # (e.g. the rank-5 Reshape of a channel shuffle); reported if the node survives.
    pending_errors: dict[str, str] = field(default_factory=dict)
    # Output shapes (or planning error) per distinct node planning (passes/shape_inference.py),
    # and the large constants its keys refer to by id.
    plan_cache: dict[tuple, tuple] = field(default_factory=dict)
    plan_cache_pins: list[np.ndarray] = field(default_factory=list)
    _counter: itertools.count = field(default_factory=itertools.count)

    def unique_name(self, hint: str) -> str:
        """A tensor/node name not used yet (for tensors and nodes the converter adds)."""
        taken = self.names_in_use()
        while True:
            candidate = f"{hint}__{next(self._counter)}"
            if candidate not in taken:
                return candidate

    def names_in_use(self) -> set[str]:
        names = {info.name for info in self.graph.inputs} | set(self.graph.constants)
        for node in self.graph.nodes:
            names.add(node.name)
            names.update(node.outputs)
        return names

    def add_constant(self, hint: str, value: np.ndarray) -> str:
        name = self.unique_name(hint)
        self.graph.constants[name] = value
        return name

    def consumers(self) -> dict[str, list[Node]]:
        """Tensor name -> nodes that read it (a node reading twice appears twice)."""
        result: dict[str, list[Node]] = {}
        for node in self.graph.nodes:
            for name in node.inputs:
                if name:
                    result.setdefault(name, []).append(node)
        return result

    def producers(self) -> dict[str, Node]:
        return {name: node for node in self.graph.nodes for name in node.outputs if name}

    def output_names(self) -> set[str]:
        return {info.name for info in self.graph.outputs}

    def rename_uses(self, old: str, new: str) -> None:
        """Make every node that reads ``old`` read ``new`` (graph outputs keep their names:
        they are the model's user-facing API)."""
        for node in self.graph.nodes:
            node.inputs = [new if name == old else name for name in node.inputs]
