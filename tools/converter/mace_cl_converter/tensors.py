"""Read ONNX ``TensorProto``s (initializers, tensor attributes) into numpy, checked first.

``onnx.checker`` does not compare a tensor's data with its dims or element type, and
``numpy_helper.to_array`` then fails with bare ValueError/KeyError (or reads garbage) on
a corrupt or hand-edited file. Every problem here becomes a ConversionError that names
the tensor, so the user knows which weight to re-export.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import AttributeProto, GraphProto, TensorProto, helper, numpy_helper

from mace_cl_converter.errors import ConversionError

# Element types the converter reads: those numpy holds natively. The others (strings,
# complex, bfloat16, float8, 4-bit) have no numpy form the passes or the runtime handle.
_READABLE = {
    TensorProto.FLOAT,
    TensorProto.DOUBLE,
    TensorProto.FLOAT16,
    TensorProto.INT8,
    TensorProto.INT16,
    TensorProto.INT32,
    TensorProto.INT64,
    TensorProto.UINT8,
    TensorProto.UINT16,
    TensorProto.UINT32,
    TensorProto.UINT64,
    TensorProto.BOOL,
}


def dtype_name(elem_type: int) -> str:
    """ONNX name of an element type; a number no onnx version defines is said to be one
    (``DataType.Name`` raises ValueError for it)."""
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type} (not an ONNX type; the file is corrupt or from a broken exporter)"


_FIX = "re-export the model, or repair that tensor"


def check_graph_tensors(graph: GraphProto, where: str) -> None:
    """Checks every initializer and tensor attribute against its dims and element type.

    Runs before onnx.checker, whose messages for the same faults name the tensor but not the
    node or attribute, and change between onnx releases.
    """
    for init in graph.initializer:
        check_tensor(init, f"{where}: initializer {init.name!r}")
    for index, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{index}"
        for attr in node.attribute:
            if attr.type == AttributeProto.TENSOR:
                check_tensor(attr.t, f"{where}: node {name!r}: attribute {attr.name!r}")


def check_tensor(tensor: TensorProto, what: str) -> None:
    """Raises ConversionError, starting with ``what``, unless the tensor's data fits its dims
    and element type."""
    fix = _FIX
    if tensor.data_type not in _READABLE:
        raise ConversionError(
            f"{what} has {dtype_name(tensor.data_type)}; the converter reads numeric and bool tensors only "
            f"({', '.join(sorted(TensorProto.DataType.Name(t) for t in _READABLE))}); {fix}"
        )
    if tensor.HasField("segment"):
        raise ConversionError(f"{what} is stored in segments, which the converter does not read; {fix}")
    if tensor.data_location == TensorProto.EXTERNAL:
        # onnx.load reads external data into raw_data; left external means it was not loaded.
        raise ConversionError(
            f"{what} keeps its data in an external file that was not loaded; "
            "keep that file next to the model, or convert the model file itself"
        )
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise ConversionError(f"{what} has negative dims {dims}; {fix}")
    count = math.prod(dims)
    np_dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
    if tensor.HasField("raw_data"):
        expected = count * np_dtype.itemsize
        if len(tensor.raw_data) != expected:
            raise ConversionError(
                f"{what} has {len(tensor.raw_data)} bytes of data, but dims {dims} of "
                f"{TensorProto.DataType.Name(tensor.data_type)} need {expected}; the file is truncated "
                f"or corrupt: {fix}"
            )
    else:
        field = helper.tensor_dtype_to_field(tensor.data_type)
        stored = len(getattr(tensor, field))
        if stored != count:
            raise ConversionError(
                f"{what} holds {stored} values, but dims {dims} need {count}; the file is truncated "
                f"or corrupt: {fix}"
            )


def read_tensor(tensor: TensorProto, what: str) -> np.ndarray:
    """``tensor`` as a numpy array; ``what`` (e.g. "model.onnx: initializer 'w'") starts
    every error message. Float16 tensors (models exported in half) are widened to float32,
    which holds every half value exactly: the passes compute in float32, and the model's
    ``data_type`` decides what precision the model file stores (mace_cl_converter.precision)."""
    check_tensor(tensor, what)
    try:
        value = numpy_helper.to_array(tensor)
    except Exception as exc:  # after the checks above, any failure means a corrupt tensor
        raise ConversionError(f"{what} cannot be read ({type(exc).__name__}: {exc}); {_FIX}") from None
    return value.astype(np.float32) if value.dtype == np.float16 else value


def check_finite(value: np.ndarray, what: str) -> None:
    """Refuse float weights holding NaN/Inf: the model format stores finite weights only, and
    folding would carry them into constants the user never named."""
    if value.dtype.kind != "f" or value.size == 0:
        return
    finite = np.isfinite(value)
    if finite.all():
        return
    bad = int(value.size - np.count_nonzero(finite))
    raise ConversionError(
        f"{what} holds NaN or infinite values ({bad} of {value.size}): the model's weights contain "
        "NaN/Inf. Re-export the model from a good checkpoint, or fix the training that produced them"
    )
