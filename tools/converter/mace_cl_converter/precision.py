"""The model's ``data_type`` (MACE's deployment name): the precision its weights are stored in.

``fp32`` stores every constant as the passes left it. ``fp16_fp32`` stores the float weights
(constants that kernels read as float data, see ``_WEIGHT_INPUTS``) as float16, halving the
file, unless half cannot hold a tensor to its precision (``_half_keeps``: tiny values such as
epsilons stay float32); the runtime widens them to float32 when it plans the graph
(``mace_cl.planning.planner``), so kernels and activations stay float32 for now.
"""

from __future__ import annotations

import numpy as np
from mace_cl.model.graph import Node

from mace_cl_converter.errors import ConversionError
from mace_cl_converter.model import Model

DATA_TYPES = ("fp32", "fp16_fp32")
DEFAULT_DATA_TYPE = "fp32"
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
}


def _is_weight(node: Node, index: int) -> bool:
    if node.op_type not in _WEIGHT_INPUTS:
        return False
    indices = _WEIGHT_INPUTS[node.op_type]
    return indices is None or index in indices


# Half's rounding error relative to a normal value: 11 significant bits.
HALF_RELATIVE_ERROR = 2.0**-11


def _half_keeps(value: np.ndarray, half: np.ndarray) -> bool:
    """Whether ``half`` holds ``value`` to half's precision relative to its largest magnitude.

    Values far below the tensor's largest matter little in half (a conv weight of 1e-7 beside
    weights of 0.5), but a tensor whose own scale is below half's normal range (an epsilon of
    1e-12, which becomes 0, then a division by zero) would change what the model computes.
    """
    scale = float(np.max(np.abs(value))) if value.size else 0.0
    error = float(np.max(np.abs(half.astype(np.float32) - value))) if value.size else 0.0
    return error <= HALF_RELATIVE_ERROR * scale


def apply_data_type(model: Model, data_type: str) -> None:
    """Stores the graph's float weights in the precision ``data_type`` names."""
    if data_type not in DATA_TYPES:
        raise ConversionError(f"data type {data_type!r} is not one of {', '.join(DATA_TYPES)}")
    if data_type == "fp32":
        return
    graph = model.graph
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
        half = value.astype(np.float16)
        if not _half_keeps(value, half):
            continue  # e.g. an epsilon of 1e-12 that half would make 0: kept in float32
        graph.constants[name] = half
