"""rules_mace runtime: run converted ONNX models with OpenCL."""

from mace.engine import MaceRuntime
from mace.graph import Graph, Node, TensorInfo

__all__ = ["Graph", "MaceRuntime", "Node", "TensorInfo"]
