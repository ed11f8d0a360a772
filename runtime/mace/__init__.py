"""rules_mace runtime: run converted ONNX models with OpenCL."""

from mace.bazel import find_manifest, load_model_runtime
from mace.engine import MaceRuntime
from mace.graph import Graph, Node, TensorInfo

__all__ = ["Graph", "MaceRuntime", "Node", "TensorInfo", "find_manifest", "load_model_runtime"]
