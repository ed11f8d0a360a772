"""Numpy evaluation of one node whose inputs are all known (for constant folding).

Covers the shape arithmetic exporters emit (Shape/Gather/Concat/Reshape/Unsqueeze/
Cast/Slice/ConstantOfShape/Range/Expand/...) and simple math directly; any other op
falls back to ``onnx.reference`` at the newest opset, which matches the importer's
canonical (newest-opset) node forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import onnx
from onnx import helper

from mace_cl_converter.attributes import PyAttr, as_int, as_ints


class FoldNode(Protocol):
    """What evaluation reads of a node: a graph ``Node``, or a node the importer has not placed
    yet, whose attributes may still hold tensors (``ConstantOfShape``'s ``value``)."""

    @property
    def op_type(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def inputs(self) -> Sequence[str]: ...

    @property
    def outputs(self) -> Sequence[str]: ...

    @property
    def attrs(self) -> Mapping[str, PyAttr]: ...


Values = list[np.ndarray | None]
Evaluator = Callable[[FoldNode, Values], list[np.ndarray]]

_EVALUATORS: dict[str, Evaluator] = {}


def _op(*names: str) -> Callable[[Evaluator], Evaluator]:
    def decorate(fn: Evaluator) -> Evaluator:
        for name in names:
            _EVALUATORS[name] = fn
        return fn

    return decorate


def _int_values(value: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _ints(value: np.ndarray | None) -> list[int] | None:
    return None if value is None else _int_values(value)


def _input(x: Values, index: int) -> np.ndarray:
    """Input ``index``, which the op requires (the ONNX checker refuses a node omitting it)."""
    value = x[index]
    if value is None:
        raise TypeError(f"input {index} is required but omitted")
    return value


@_op("Identity", "Dropout")
def _identity(node: FoldNode, x: Values) -> list[np.ndarray]:
    return [_input(x, 0)]


@_op("Shape")
def _shape(node: FoldNode, x: Values) -> list[np.ndarray]:
    dims = np.array(_input(x, 0).shape, dtype=np.int64)
    start = as_int(node.attrs.get("start", 0))
    end = node.attrs.get("end")
    return [dims[start : None if end is None else as_int(end)]]


@_op("Size")
def _size(node: FoldNode, x: Values) -> list[np.ndarray]:
    return [np.array(_input(x, 0).size, dtype=np.int64)]


@_op("Gather")
def _gather(node: FoldNode, x: Values) -> list[np.ndarray]:
    data, indices = _input(x, 0), np.asarray(x[1]).astype(np.int64)
    axis = as_int(node.attrs.get("axis", 0)) % max(data.ndim, 1)
    indices = np.where(indices < 0, indices + data.shape[axis], indices)
    return [np.take(data, indices, axis=axis)]


@_op("Concat")
def _concat(node: FoldNode, x: Values) -> list[np.ndarray]:
    parts = [v for v in x if v is not None]
    return [np.concatenate(parts, axis=as_int(node.attrs["axis"]))]


@_op("Reshape")
def _reshape(node: FoldNode, x: Values) -> list[np.ndarray]:
    data, target = _input(x, 0), _ints(x[1]) or []
    allow_zero = as_int(node.attrs.get("allowzero", 0))
    shape = [data.shape[i] if d == 0 and not allow_zero else d for i, d in enumerate(target)]
    return [data.reshape(shape)]


@_op("Flatten")
def _flatten(node: FoldNode, x: Values) -> list[np.ndarray]:
    data = _input(x, 0)
    axis = as_int(node.attrs.get("axis", 1)) % (data.ndim + 1) if data.ndim else 0
    return [data.reshape(int(np.prod(data.shape[:axis])), -1)]


@_op("Unsqueeze")
def _unsqueeze(node: FoldNode, x: Values) -> list[np.ndarray]:
    data = _input(x, 0)
    axes = _int_values(x[1]) if len(x) > 1 and x[1] is not None else []
    rank = data.ndim + len(axes)
    return [np.expand_dims(data, tuple(sorted(a % rank for a in axes)))]


@_op("Squeeze")
def _squeeze(node: FoldNode, x: Values) -> list[np.ndarray]:
    data = _input(x, 0)
    if len(x) <= 1 or x[1] is None:
        return [np.squeeze(data)]
    axes = _int_values(x[1])
    return [np.squeeze(data, tuple(a % data.ndim for a in axes))]


@_op("Cast")
def _cast(node: FoldNode, x: Values) -> list[np.ndarray]:
    dtype = helper.tensor_dtype_to_np_dtype(as_int(node.attrs["to"]))
    return [np.asarray(x[0]).astype(dtype)]


@_op("Slice")
def _slice(node: FoldNode, x: Values) -> list[np.ndarray]:
    data = _input(x, 0)
    starts, ends = _ints(x[1]) or [], _ints(x[2]) or []
    axes = _int_values(x[3]) if len(x) > 3 and x[3] is not None else list(range(len(starts)))
    steps = _int_values(x[4]) if len(x) > 4 and x[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    big = np.iinfo(np.int64).max
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        # Python slicing clamps like ONNX; INT64_MAX/MIN sentinels mean "to the end".
        end_value = None if (step < 0 and end <= -big) or (step > 0 and end >= big) else end
        index[axis % data.ndim] = slice(start, end_value, step)
    return [data[tuple(index)]]


@_op("ConstantOfShape")
def _constant_of_shape(node: FoldNode, x: Values) -> list[np.ndarray]:
    value = node.attrs.get("value")
    fill = np.asarray(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    return [np.full(_ints(x[0]) or [], fill[0], dtype=fill.dtype)]


@_op("Range")
def _range(node: FoldNode, x: Values) -> list[np.ndarray]:
    start, limit, delta = (np.asarray(v).reshape(()) for v in x[:3])
    # arange takes these 0-d arrays at run time; numpy's stubs accept scalars only (which would
    # give the same values, but with overflow warnings of their own).
    return [np.arange(start, limit, delta).astype(np.asarray(x[0]).dtype)]  # type: ignore[call-overload]


@_op("Expand")
def _expand(node: FoldNode, x: Values) -> list[np.ndarray]:
    data = _input(x, 0)
    shape = np.broadcast_shapes(data.shape, tuple(_ints(x[1]) or []))
    return [np.broadcast_to(data, shape).copy()]


@_op("Transpose")
def _transpose(node: FoldNode, x: Values) -> list[np.ndarray]:
    perm = node.attrs.get("perm")
    return [np.transpose(_input(x, 0), as_ints(perm) if isinstance(perm, list) else None)]


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Evaluator:
    def evaluate(node: FoldNode, x: Values) -> list[np.ndarray]:
        a, b = np.asarray(x[0]), np.asarray(x[1])
        return [np.asarray(fn(a, b)).astype(np.result_type(a, b) if a.dtype != bool else a.dtype)]

    return evaluate


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if np.any(np.asarray(b) == 0):
            raise ValueError("it divides an integer by zero")
        return np.trunc(a / b).astype(np.result_type(a, b))  # ONNX integer Div truncates
    with np.errstate(divide="ignore", invalid="ignore"):  # reported by evaluate(), by node
        return a / b


_op("Add")(_binary(np.add))
_op("Sub")(_binary(np.subtract))
_op("Mul")(_binary(np.multiply))
_op("Div")(_binary(_divide))
_op("Pow")(lambda node, x: [np.power(_input(x, 0), _input(x, 1)).astype(_input(x, 0).dtype)])
_op("Equal")(lambda node, x: [np.equal(_input(x, 0), _input(x, 1))])
_op("Less")(lambda node, x: [np.less(_input(x, 0), _input(x, 1))])
_op("Greater")(lambda node, x: [np.greater(_input(x, 0), _input(x, 1))])
_op("Not")(lambda node, x: [np.logical_not(_input(x, 0))])
_op("Where")(lambda node, x: [np.where(_input(x, 0), _input(x, 1), _input(x, 2))])
_op("Neg")(lambda node, x: [np.negative(_input(x, 0))])
_op("Abs")(lambda node, x: [np.abs(_input(x, 0))])
_op("Sqrt")(lambda node, x: [np.sqrt(_input(x, 0))])
_op("Reciprocal")(lambda node, x: [np.reciprocal(_input(x, 0))])
_op("Floor")(lambda node, x: [np.floor(_input(x, 0))])
_op("Ceil")(lambda node, x: [np.ceil(_input(x, 0))])
_op("Exp")(lambda node, x: [np.exp(_input(x, 0))])
_op("Log")(lambda node, x: [np.log(_input(x, 0))])
_op("Relu")(lambda node, x: [np.maximum(_input(x, 0), 0).astype(_input(x, 0).dtype)])


def _variadic(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Evaluator:
    def evaluate(node: FoldNode, x: Values) -> list[np.ndarray]:
        result = np.asarray(x[0])
        for index in range(1, len(x)):
            result = fn(result, _input(x, index))
        return [np.asarray(result)]

    return evaluate


_op("Sum")(_variadic(np.add))
_op("Max")(_variadic(np.maximum))
_op("Min")(_variadic(np.minimum))


def _planned_nbytes(node: FoldNode, x: Values) -> int | None:
    """Bytes the ops that make data from a shape would allocate, known before they do."""
    if node.op_type == "ConstantOfShape":
        value = node.attrs.get("value")
        itemsize = np.asarray(value).dtype.itemsize if value is not None else 4
        return math.prod(_ints(x[0]) or []) * itemsize
    if node.op_type == "Expand":
        data = _input(x, 0)
        try:
            shape = np.broadcast_shapes(data.shape, tuple(_ints(x[1]) or []))
        except ValueError:
            return None  # evaluation reports the bad shape
        return math.prod(shape) * data.dtype.itemsize
    if node.op_type == "Range":
        start, limit, delta = (float(np.asarray(v).reshape(())) for v in x[:3])
        count = 0 if delta == 0 else max(0, math.ceil((limit - start) / delta))
        return count * np.asarray(x[0]).dtype.itemsize
    if node.op_type == "Tile":
        data = _input(x, 0)
        return (
            math.prod(d * r for d, r in zip(data.shape, _ints(x[1]) or [], strict=False))
            * data.dtype.itemsize
        )
    return None


def evaluate(node: FoldNode, values: Values, where: str, max_bytes: int) -> list[np.ndarray]:
    """Output values of ``node`` given every input's value (None for omitted inputs).

    ValueError, before allocating, when the result would be larger than ``max_bytes``: a
    few-hundred-byte file can ask for a tensor of any size.
    """
    planned = _planned_nbytes(node, values)
    if planned is not None and planned > max_bytes:
        raise ValueError(_too_large(planned, max_bytes))
    evaluator = _EVALUATORS.get(node.op_type)
    results = evaluator(node, values) if evaluator is not None else _reference(node, values, where)
    made = sum(np.asarray(result).nbytes for result in results)
    if made > max_bytes:
        raise ValueError(_too_large(made, max_bytes))
    # A model's constants must be finite (the model format stores no others): say which node
    # made a NaN or infinity, not which converter-made constant later holds it.
    if any(np.asarray(r).dtype.kind == "f" and not np.all(np.isfinite(r)) for r in results):
        raise ValueError("its result holds NaN or infinite values (a division by zero, or an overflow?)")
    return results


def _too_large(nbytes: int, max_bytes: int) -> str:
    return (
        f"its result would take {nbytes} bytes, over the converter's limit of {max_bytes} bytes for one "
        "constant; raise it with --max-constant-bytes if the model really needs it"
    )


def _reference(node: FoldNode, values: Values, where: str) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if v is not None else "" for i, v in enumerate(values)]
    outputs = [f"out{i}" for i in range(len(node.outputs))]
    attributes: dict[str, Any] = dict(node.attrs)  # make_node takes attributes as **kwargs: Any
    proto = helper.make_node(node.op_type, names, outputs, **attributes)
    inputs = [
        helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), np.shape(v))
        for name, v in zip(names, values, strict=True)
        if v is not None
    ]
    graph = helper.make_graph(
        [proto], "fold", inputs, [helper.make_value_info(name, onnx.TypeProto()) for name in outputs]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx.defs.onnx_opset_version())])
    try:
        results = ReferenceEvaluator(model).run(None, {n: v for n, v in zip(names, values, strict=True) if n})
    except Exception as exc:  # the reference raises many types; any failure means "cannot fold"
        raise ValueError(
            f"{where}: cannot evaluate constant node {node.name!r} ({node.op_type}): {exc}"
        ) from exc
    return [np.asarray(r) for r in results]


def numpy_ops() -> list[str]:
    return sorted(_EVALUATORS)
