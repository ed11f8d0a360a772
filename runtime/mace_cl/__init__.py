"""rules_mace runtime: run converted ONNX models with OpenCL.

The package is layered, each layer a folder that imports only the ones before it:
``model`` (graph and on-disk formats), ``planning`` (ops, programs, memory; no OpenCL),
``targets`` (which binaries fit which device), ``execution`` (OpenCL: devices, programs,
the engine). The names below load on first use (PEP 562), so importing ``mace_cl.model`` or
``mace_cl.planning`` alone, as the converter does, never imports OpenCL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mace_cl.bazel import find_manifest, load_model_runtime
    from mace_cl.execution.engine import MaceRuntime
    from mace_cl.execution.node_arg import NodeArg
    from mace_cl.model.graph import Graph, Node, TensorInfo

# Public name -> the module that defines it.
_EXPORTS = {
    "Graph": "mace_cl.model.graph",
    "MaceRuntime": "mace_cl.execution.engine",
    "Node": "mace_cl.model.graph",
    "NodeArg": "mace_cl.execution.node_arg",
    "TensorInfo": "mace_cl.model.graph",
    "find_manifest": "mace_cl.bazel",
    "load_model_runtime": "mace_cl.bazel",
}

__all__ = ["Graph", "MaceRuntime", "Node", "NodeArg", "TensorInfo", "find_manifest", "load_model_runtime"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mace_cl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
