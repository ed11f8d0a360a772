"""Fix the shape of every graph input, from the model or from the user.

The runtime plans every shape before it runs, so no dimension may stay dynamic.
All open dimensions are reported in one error, so one retry with ``--input-shape``
flags fixes them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import onnx

from mace_cl_converter.errors import InputShapeError

Shape = tuple[int, ...]


def parse_dims(text: str) -> Shape:
    """``"1,3,224,224"`` -> (1, 3, 224, 224); ``""`` (or only spaces) -> (), a scalar input.

    Dimensions are ASCII digits separated by commas, spaces allowed around each, every one at
    least 1. rules/private/input_shapes.bzl's parse_shape checks the same grammar at analysis
    time (mace_model's ``input_shapes``) and must accept and refuse exactly what this accepts
    and refuses; rules/tests/input_shape_cases.bzl is the table both are tested against. Raises
    ValueError saying what is wrong.
    """
    if not text.strip(" "):
        return ()  # ONNX inputs of shape [] are scalars
    shape = []
    for part in text.split(","):
        digits = part.strip(" ")
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"{digits!r} is not a whole number; every dimension must be fixed")
        if int(digits) < 1:
            raise ValueError(f"dimensions must be at least 1, got {int(digits)}")
        shape.append(int(digits))
    return tuple(shape)


def parse_input_shape(text: str) -> tuple[str, Shape]:
    """``"name=1,3,224,224"`` -> ("name", (1, 3, 224, 224)). A scalar is ``"name="``."""
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise InputShapeError(f"--input-shape {text!r}: expected NAME=D0,D1,... (e.g. input=1,3,224,224)")
    try:
        return name, parse_dims(dims)
    except ValueError as exc:
        raise InputShapeError(f"--input-shape {text!r}: {exc}") from None


def parse_input_shapes(items: Sequence[str]) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    for item in items:
        name, shape = parse_input_shape(item)
        if name in shapes:
            raise InputShapeError(f"--input-shape gives input {name!r} twice")
        shapes[name] = shape
    return shapes


def resolve_input_shapes(
    inputs: Sequence[onnx.ValueInfoProto], user: Mapping[str, Shape], where: str
) -> dict[str, Shape]:
    """Shape of each graph input (in order); user shapes override the model's."""
    names = [info.name for info in inputs]
    unknown = sorted(set(user) - set(names))
    if unknown:
        raise InputShapeError(
            f"{where}: --input-shape names {', '.join(map(repr, unknown))}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not a graph input; inputs: {', '.join(names) or '(none)'}"
        )
    resolved: dict[str, Shape] = {}
    problems: list[str] = []
    for info in inputs:
        declared = _declared_dims(info)
        if info.name in user:
            shape = user[info.name]
            if declared is not None and len(declared) != len(shape):
                problems.append(
                    f"input {info.name!r}: --input-shape gives rank {len(shape)}, the model declares rank {len(declared)}"
                )
                continue
            for axis, (want, given) in enumerate(zip(declared or (), shape, strict=False)):
                if isinstance(want, int) and want != given:
                    problems.append(
                        f"input {info.name!r}: --input-shape gives {given} for dim {axis}, the model fixes it to {want}"
                    )
            resolved[info.name] = shape
            continue
        if declared is None:
            problems.append(f"input {info.name!r}: the model declares no shape; give all of it")
            continue
        open_dims = [
            f"dim {axis} ({d or 'unnamed'})" for axis, d in enumerate(declared) if not isinstance(d, int)
        ]
        if open_dims:
            problems.append(f"input {info.name!r}: {', '.join(open_dims)} dynamic")
            continue
        resolved[info.name] = tuple(int(d) for d in declared)
    if problems:
        raise InputShapeError(
            f"{where}: every input dimension needs a fixed value:\n  "
            + "\n  ".join(problems)
            + "\nGive full shapes with --input-shape NAME=D0,D1,... (one flag per input)."
        )
    return resolved


def _declared_dims(info: onnx.ValueInfoProto) -> list[int | str] | None:
    """Declared dims: ints where fixed, the dim_param name (or "") where dynamic; None if no shape."""
    tensor_type = info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[int | str] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param if dim.HasField("dim_param") else "")
    return dims
