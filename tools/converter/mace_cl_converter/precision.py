"""The model's ``data_type`` (MACE's deployment name): the precision its weights and, on the
device, its activations are stored in.

``fp32`` stores every constant as the passes left it. ``fp16_fp32`` stores the float weights
(constants that kernels read as float data, see ``_WEIGHT_INPUTS``) as float16, halving the
file, and marks the graph so that the runtime keeps weights and activations in half on the
device (``mace_cl.model.data_type``). A weight half cannot hold at all (beyond 65504, or a
nonzero tensor that would become all zeros) is refused by name.
"""

from __future__ import annotations

import numpy as np
from mace_cl.model.data_type import DATA_TYPES, DEFAULT_DATA_TYPE, storage_dtype
from mace_cl.model.graph import Node

from mace_cl_converter.errors import ConversionError
from mace_cl_converter.model import Model

__all__ = ["DATA_TYPES", "DEFAULT_DATA_TYPE", "apply_data_type"]
HALF_MAX = float(np.finfo(np.float16).max)  # 65504

# Op type -> the inputs whose constant value the op packs into a device buffer of floats
# (mace_cl.planning.ops); None: every input. Constants read on the host as parameters
# (Clip's min/max, Resize's scales, Pad's value, integer shapes) are left as they are:
# they are a few bytes, and rounding a scale could change an output shape.
_WEIGHT_INPUTS: dict[str, tuple[int, ...] | None] = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "Gemm": (0, 1, 2),
    "MatMul": (0, 1),
    "PRelu": (1,),
    "Add": None,
    "Sub": None,
    "Mul": None,
    "Div": None,
    "Max": None,
    "Min": None,
    "Sum": None,
    "Concat": None,
    "ChannelGather": None,
    "SqueezeExcite": (1, 2, 3, 4),
    "SeparableConv": (1, 2, 3, 4),
    "DepthwiseSqueezeExcite": (1, 2, 3, 4, 5, 6),
    "GatherConv": None,
    "ShuffledDepthwiseConv": (1, 2),
}


def _is_weight(node: Node, index: int) -> bool:
    if node.op_type not in _WEIGHT_INPUTS:
        return False
    indices = _WEIGHT_INPUTS[node.op_type]
    return indices is None or index in indices


# Half's smallest positive value (a subnormal, 2^-24); anything below half of it rounds to 0.
HALF_SMALLEST = float(np.finfo(np.float16).smallest_subnormal)


def apply_data_type(model: Model, data_type: str) -> None:
    """Stores the graph's float weights in the precision ``data_type`` names."""
    if data_type not in DATA_TYPES:
        raise ConversionError(f"data type {data_type!r} is not one of {', '.join(DATA_TYPES)}")
    graph = model.graph
    graph.data_type = data_type
    if storage_dtype(data_type) == np.float32:
        return
    readers: dict[str, list[tuple[Node, int]]] = {}
    for node in graph.nodes:
        for index, name in enumerate(node.inputs):
            if name in graph.constants:
                readers.setdefault(name, []).append((node, index))
    for name, uses in sorted(readers.items()):
        value = graph.constants[name]
        if value.dtype != np.float32 or not all(_is_weight(node, index) for node, index in uses):
            continue
        if value.size:
            largest = float(value.flat[int(np.argmax(np.abs(value)))])
            # Refused, not clamped: clamping (or letting it become infinity) would silently
            # change what the model computes; the user chooses fp32 instead.
            if abs(largest) > HALF_MAX:
                node = uses[0][0]
                raise ConversionError(
                    f"{model.where}: weight {name!r} (read by node {node.name!r}, {node.op_type}) holds "
                    f"{largest:g}, beyond half precision's range (magnitude at most {HALF_MAX:g}); "
                    "convert this model with data_type fp32"
                )
            # A tensor half turns into zeros (an epsilon of 1e-12) would make the model divide
            # by zero or lose a term: refused, for the same reason as above. The device keeps
            # every weight and activation in half, so keeping it float32 in the file would not help.
            if largest != 0.0 and not np.any(value.astype(np.float16)):
                node = uses[0][0]
                raise ConversionError(
                    f"{model.where}: weight {name!r} (read by node {node.name!r}, {node.op_type}) has "
                    f"largest magnitude {abs(largest):g}, which half precision stores as 0 (its smallest "
                    f"value is {HALF_SMALLEST:.3g}); convert this model with data_type fp32, or raise that "
                    "constant (an epsilon, say) to at least that value in the ONNX model"
                )
        graph.constants[name] = value.astype(np.float16)
