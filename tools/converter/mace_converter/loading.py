"""Load an ONNX file and check that it is a model this converter can import.

A truncated or garbage file usually still "parses" as protobuf (protobuf is lenient),
so besides the parse we run ``onnx.checker`` and require a graph with outputs.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from mace_converter.errors import ModelLoadError

# Opset 7 brought numpy-style broadcasting; older models use the legacy ``broadcast``
# attribute, whose semantics the importer does not implement.
MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()
DEFAULT_DOMAINS = ("", "ai.onnx")


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Read and check ``path``; raise ModelLoadError naming the file on any problem."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the ONNX file: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelLoadError(f"{path}: the file is empty; expected an ONNX model")
    try:
        # External data files are resolved relative to the model's folder.
        model = onnx.load(str(path))
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(
            f"{path}: not a readable ONNX model (the file may be truncated or not ONNX): {exc}"
        ) from None
    check_model(model, str(path))
    return model


def check_model(model: onnx.ModelProto, where: str) -> int:
    """Check structure and opset; return the default-domain opset version."""
    if not model.HasField("graph") or not model.graph.output:
        raise ModelLoadError(
            f"{where}: the file has no graph outputs; it is truncated or not an ONNX model"
        )
    try:
        onnx.checker.check_model(_with_output_shapes(model))
    except onnx.checker.ValidationError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid model"
        raise ModelLoadError(f"{where}: the ONNX checker rejects the model: {first_line}") from None
    return default_opset(model, where)


def _with_output_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose outputs all carry a (possibly empty) shape field: exporters may leave
    output shapes undeclared, which is legal ONNX but trips the checker's field check."""
    if all(o.type.tensor_type.HasField("shape") for o in model.graph.output):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for output in copy.graph.output:
        if output.type.HasField("tensor_type") and not output.type.tensor_type.HasField("shape"):
            output.type.tensor_type.shape.SetInParent()
    return copy


def default_opset(model: onnx.ModelProto, where: str) -> int:
    versions = {entry.domain: entry.version for entry in model.opset_import}
    version = next((versions[d] for d in DEFAULT_DOMAINS if d in versions), None)
    if version is None:
        raise ModelLoadError(f"{where}: the model imports no version of the default ONNX opset")
    if version < MIN_OPSET:
        raise ModelLoadError(
            f"{where}: opset {version} is older than {MIN_OPSET}; opsets before 7 use legacy "
            "broadcasting, which this converter does not implement. Upgrade the model first, "
            f"e.g. onnx.version_converter.convert_version(model, {MIN_OPSET})"
        )
    if version > MAX_OPSET:
        raise ModelLoadError(
            f"{where}: opset {version} is newer than {MAX_OPSET}, the newest this onnx "
            f"{onnx.__version__} knows"
        )
    return version
