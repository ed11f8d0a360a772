"""Input and output descriptions in onnxruntime's shape: ``name``, ``shape``, ``type``.

Code written against ``onnxruntime.InferenceSession.get_inputs()`` reads these three
attributes; the type is ONNX's tensor type string ("tensor(float)").
"""

from __future__ import annotations

from dataclasses import dataclass

from mace_cl.model.graph import TensorInfo

# numpy dtype name -> ONNX tensor type string, for the dtypes a model's inputs and outputs have.
ONNX_TYPE_OF_DTYPE = {
    "float32": "tensor(float)",
    "float16": "tensor(float16)",
    "int32": "tensor(int32)",
    "int64": "tensor(int64)",
    "bool": "tensor(bool)",
}


@dataclass(frozen=True)
class NodeArg:
    name: str
    shape: list[int]
    type: str

    @classmethod
    def of(cls, info: TensorInfo) -> NodeArg:
        return cls(info.name, list(info.shape), ONNX_TYPE_OF_DTYPE.get(info.dtype, f"tensor({info.dtype})"))
