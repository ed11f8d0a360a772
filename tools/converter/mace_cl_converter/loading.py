"""Load an ONNX file and check that it is a model this converter can import.

A truncated or garbage file usually still "parses" as protobuf (protobuf is lenient),
so besides the parse we run ``onnx.checker`` and require a graph with outputs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import onnx
from google.protobuf.message import DecodeError

from mace_cl_converter.errors import ModelLoadError
from mace_cl_converter.tensors import check_graph_tensors

# Opset 7 brought numpy-style broadcasting; older models use the legacy ``broadcast``
# attribute, whose semantics the importer does not implement.
MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()
DEFAULT_DOMAINS = ("", "ai.onnx")


# Protobuf's limit for one serialized message, hence for an ONNX file without external data.
MAX_ONNX_BYTES = 2**31 - 1


def load_onnx(path: str | Path, data_files: Sequence[str | Path] | None = None) -> onnx.ModelProto:
    """Read and check ``path``; raise ModelLoadError naming the file on any problem.

    ``data_files``: when given, the only files external data may come from (a build declares
    them, so nothing else beside the model is read); each must be in the model's folder or below.
    """
    path = Path(path)
    declared = None if data_files is None else _declared_data_names(path, data_files)
    try:
        info = path.stat()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the ONNX file: {exc.strerror or exc}") from None
    # A FIFO or device would block the read or never end it: only regular files are models.
    if not stat.S_ISREG(info.st_mode):
        raise ModelLoadError(f"{path}: is not a regular file; give the ONNX model file itself")
    size = info.st_size
    if size > MAX_ONNX_BYTES:
        raise ModelLoadError(
            f"{path}: {size} bytes is over protobuf's 2 GiB limit for an ONNX file; "
            "keep large weights in external data files"
        )
    if size == 0:
        raise ModelLoadError(f"{path}: the file is empty; expected an ONNX model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(
            f"{path}: not a readable ONNX model (the file may be truncated or not ONNX): {exc}"
        ) from None
    _load_external_data(model, path, declared)
    check_model(model, str(path))
    return model


def _external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors += [attr.t for attr in node.attribute if attr.type == onnx.AttributeProto.TENSOR]
    return [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]


def _declared_data_names(model: Path, data_files: Sequence[str | Path]) -> set[str]:
    """Each declared data file's name relative to the model's folder, as ONNX locations write it."""
    names = set()
    for data_file in data_files:
        relative = PurePosixPath(os.path.relpath(data_file, model.parent))
        if ".." in relative.parts:
            raise ModelLoadError(
                f"{model}: the model data file {data_file} is not in the model's folder or "
                "below it; ONNX external data is found relative to the model"
            )
        names.add(str(relative))
    return names


def _load_external_data(model: onnx.ModelProto, path: Path, declared: set[str] | None) -> None:
    """Reads tensors kept in side files, each checked first: a plain relative name inside the
    model's folder that really lives there (and, in a build, is declared), a regular file, and
    the range it names in it."""
    for tensor in _external_tensors(model):
        info = {entry.key: entry.value for entry in tensor.external_data}
        where = f"{path}: tensor {tensor.name!r} keeps its data in {info.get('location', '?')!r}"
        location = info.get("location", "")
        if not location or Path(location).is_absolute() or ".." in Path(location).parts:
            raise ModelLoadError(
                f"{where}, which is not a file name relative to the model's folder; "
                "re-export with the data file beside the model"
            )
        if declared is not None and str(PurePosixPath(location)) not in declared:
            listed = ", ".join(sorted(declared)) or "none"
            raise ModelLoadError(
                f"{where}, which is not one of the model's declared data files ({listed}); "
                f"add it to the model's data (with Bazel: mace_model(model_data = [...]))"
            )
        data_file = path.parent / location
        try:
            data_info = data_file.stat()
        except OSError as exc:
            raise ModelLoadError(
                f"{where}, which cannot be read ({exc.strerror or exc}); keep that file beside "
                "the model (with Bazel: list it in the model's data)"
            ) from None
        if not stat.S_ISREG(data_info.st_mode):
            raise ModelLoadError(f"{where}, which is not a regular file")
        # Symlinks are fine (Bazel's sandboxes and runfiles are made of them) as long as the data
        # really lives beside the model; one pointing elsewhere would read any file as weights.
        if not data_file.resolve().is_relative_to(path.resolve().parent):
            raise ModelLoadError(
                f"{where}, which is a link to a file outside the model's folder; "
                "put the data file itself beside the model"
            )
        try:
            offset = int(info.get("offset", 0))
            length = int(info.get("length", data_info.st_size - offset))
        except ValueError:
            raise ModelLoadError(f"{where} with a malformed offset or length") from None
        if offset < 0 or length < 0 or offset + length > data_info.st_size:
            raise ModelLoadError(
                f"{where} at bytes [{offset}, {offset + length}), but the file has "
                f"{data_info.st_size}: it is truncated or not this model's data"
            )
        # Read here rather than by onnx's loader, which refuses every symlink (and so every
        # Bazel sandbox) and reads unchecked lengths.
        try:
            with open(data_file, "rb") as stream:
                stream.seek(offset)
                data = stream.read(length)
        except OSError as exc:
            raise ModelLoadError(f"{where}, which cannot be read ({exc.strerror or exc})") from None
        if len(data) != length:
            raise ModelLoadError(f"{where}, which changed while it was read")
        tensor.raw_data = data
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def _check_names(graph: onnx.GraphProto, where: str) -> None:
    """Names must be text: protobuf hands invalid UTF-8 in a string field over as bytes, which
    would travel through the converter and fail only when the model file is written."""
    fix = "the file is corrupt or from a broken exporter: re-export the model"
    for kind, infos in (
        ("input", graph.input),
        ("output", graph.output),
        ("value_info", graph.value_info),
        ("initializer", graph.initializer),
    ):
        for index, info in enumerate(infos):
            if not isinstance(info.name, str):
                raise ModelLoadError(
                    f"{where}: graph {kind} #{index} has a name that is not valid UTF-8; {fix}"
                )
    for index, node in enumerate(graph.node):
        fields = [node.name, node.op_type, node.domain, *node.input, *node.output]
        if not all(isinstance(text, str) for text in fields):
            op = node.op_type if isinstance(node.op_type, str) else "?"
            raise ModelLoadError(
                f"{where}: node #{index} ({op}) has a name, input or output that is not valid UTF-8; {fix}"
            )


def check_model(model: onnx.ModelProto, where: str) -> int:
    """Check structure and opset; return the default-domain opset version."""
    if not model.HasField("graph") or not model.graph.output:
        raise ModelLoadError(f"{where}: the file has no graph outputs; it is truncated or not an ONNX model")
    _check_names(model.graph, where)
    check_graph_tensors(model.graph, where)
    try:
        onnx.checker.check_model(_with_output_shapes(model))
    except onnx.checker.ValidationError as exc:
        # One line, but all of it: the checker names the node on a later line (e.g. for a cycle).
        text = " ".join(str(exc).split())[:600] or "invalid model"
        raise ModelLoadError(f"{where}: the ONNX checker rejects the model: {text}") from None
    except UnicodeDecodeError:
        # onnx 1.23's checker decodes the model's strings (names, attributes) as UTF-8 itself.
        raise ModelLoadError(
            f"{where}: the file holds a name or text attribute that is not valid UTF-8; "
            "it is corrupt or from a broken exporter: re-export the model"
        ) from None
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
