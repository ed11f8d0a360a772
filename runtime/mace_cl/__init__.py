"""rules_mace runtime: run converted ONNX models with OpenCL."""

from mace_cl.bazel import find_manifest, load_model_runtime
from mace_cl.engine import MaceRuntime
from mace_cl.graph import Graph, Node, TensorInfo
from mace_cl.node_arg import NodeArg

__all__ = ["Graph", "MaceRuntime", "Node", "NodeArg", "TensorInfo", "find_manifest", "load_model_runtime"]
