"""The model file (``.mace``): a graph and its weights in the container (docs/formats.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mace_cl.model.container import (
    DIGEST_BYTES,
    FormatError,
    blob_layout,
    blob_view,
    check_blob_layout,
    check_format,
    json_field,
    pack_container,
    read_regular_file,
    unpack_container,
    write_atomically,
)
from mace_cl.model.data_type import DATA_TYPES, DEFAULT_DATA_TYPE
from mace_cl.model.graph import Graph, Node, TensorInfo

MODEL_MAGIC = b"MACEMODL"
MODEL_FORMAT_VERSION = 1
# Constant dtypes a model file may hold, by their numpy name.
CONSTANT_DTYPES = ("float32", "float16", "int64", "int32", "int8", "uint8", "bool")


@dataclass
class ModelFile:
    """A model as stored: the graph, free-form string metadata, and the file's digest."""

    graph: Graph
    metadata: dict[str, str] = field(default_factory=dict)
    digest: str = ""  # SHA-256 hex of the file (its trailer); empty until written or read


def encode_model(graph: Graph, metadata: Mapping[str, str] | None = None) -> bytes:
    """The model file's bytes; a pure function of the graph, its weights and the metadata.

    The graph's ``data_type`` is stored as the metadata entry ``data_type``."""
    graph.validate()
    if metadata is not None and metadata.get("data_type", graph.data_type) != graph.data_type:
        raise FormatError(
            f"metadata says data_type {metadata['data_type']!r} but the graph is {graph.data_type!r}"
        )
    metadata = {**(metadata or {}), "data_type": graph.data_type}
    names = sorted(graph.constants)
    arrays = []
    for name in names:
        array = np.asarray(graph.constants[name])
        dtype = array.dtype.name
        if dtype not in CONSTANT_DTYPES:
            raise FormatError(
                f"constant {name!r} has dtype {dtype}; the model format stores {', '.join(CONSTANT_DTYPES)}"
            )
        if dtype.startswith("float") and not np.all(np.isfinite(array)):
            raise FormatError(f"constant {name!r} holds NaN or infinite values; fix the model's weights")
        arrays.append(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")))
    offsets = blob_layout(a.nbytes for a in arrays)
    header = {
        "format": "mace-model",
        "inputs": [_tensor_info_json(info) for info in graph.inputs],
        "outputs": [_tensor_info_json(info) for info in graph.outputs],
        "nodes": [
            {
                "op_type": n.op_type,
                "name": n.name,
                "inputs": list(n.inputs),
                "outputs": list(n.outputs),
                "attrs": n.attrs,
            }
            for n in graph.nodes
        ],
        "constants": [
            {"name": name, "dtype": a.dtype.name, "shape": list(a.shape), "offset": off, "nbytes": a.nbytes}
            for name, a, off in zip(names, arrays, offsets, strict=True)
        ],
        "metadata": dict(sorted(metadata.items())),
    }
    data, _ = pack_container(MODEL_MAGIC, MODEL_FORMAT_VERSION, header, [a.tobytes() for a in arrays])
    return data


def write_model(graph: Graph, path: str | Path, metadata: Mapping[str, str] | None = None) -> str:
    """Writes the model file atomically; returns its digest."""
    data = encode_model(graph, metadata)
    write_atomically(path, data)
    return data[-DIGEST_BYTES:].hex()


def decode_model(data: bytes, where: str = "model") -> ModelFile:
    container = unpack_container(data, MODEL_MAGIC, MODEL_FORMAT_VERSION, "rules_mace model file", where)
    header = container.header
    try:
        check_format(header, "mace-model", where)
        check_blob_layout(
            json_field(header, "constants", list, where), len(container.payload), "constant", where
        )
        inputs = [_tensor_info_from_json(item, where) for item in json_field(header, "inputs", list, where)]
        outputs = [_tensor_info_from_json(item, where) for item in json_field(header, "outputs", list, where)]
        nodes = [_node_from_json(item, where) for item in json_field(header, "nodes", list, where)]
        constants = {}
        for item in json_field(header, "constants", list, where):
            name = json_field(item, "name", str, where)
            dtype = json_field(item, "dtype", str, where)
            if dtype not in CONSTANT_DTYPES:
                raise FormatError(f"{where}: constant {name!r} has unknown dtype {dtype!r}")
            shape = tuple(json_field(item, "shape", list, where))
            if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                raise FormatError(f"{where}: constant {name!r} has a malformed shape {list(shape)}")
            blob = blob_view(
                container.payload, item.get("offset"), item.get("nbytes"), f"{where}: constant {name!r}"
            )
            expected = math.prod(shape) * np.dtype(dtype).itemsize
            if len(blob) != expected:
                raise FormatError(
                    f"{where}: constant {name!r} holds {len(blob)} bytes, its shape needs {expected}"
                )
            constants[name] = (
                np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
            )
            # encode_model never writes these; a file holding them was made by something else.
            if dtype.startswith("float") and not np.all(np.isfinite(constants[name])):
                raise FormatError(f"{where}: constant {name!r} holds NaN or infinite values")
        metadata = json_field(header, "metadata", dict, where)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise FormatError(f"{where}: metadata must map strings to strings")
        data_type = metadata.get("data_type", DEFAULT_DATA_TYPE)
        if data_type not in DATA_TYPES:
            raise FormatError(
                f"{where}: data_type {data_type!r} is not one of {', '.join(DATA_TYPES)}; "
                "a newer rules_mace may have written this file"
            )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{where}: malformed model header ({exc})") from None
    graph = Graph(inputs=inputs, outputs=outputs, nodes=nodes, constants=constants, data_type=data_type)
    try:
        graph.validate()
    except ValueError as exc:
        raise FormatError(f"{where}: the stored graph is inconsistent: {exc}") from None
    return ModelFile(graph=graph, metadata=metadata, digest=container.digest)


def read_model(path: str | Path) -> ModelFile:
    return decode_model(read_regular_file(path, "rules_mace model file"), where=str(path))


def _tensor_info_json(info: TensorInfo) -> dict[str, Any]:
    return {"name": info.name, "shape": list(info.shape), "dtype": info.dtype}


def _tensor_info_from_json(item: Any, where: str) -> TensorInfo:
    shape = json_field(item, "shape", list, where)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise FormatError(f"{where}: tensor {item.get('name')!r} has a malformed shape")
    return TensorInfo(
        json_field(item, "name", str, where), tuple(shape), json_field(item, "dtype", str, where)
    )


def _node_from_json(item: Any, where: str) -> Node:
    inputs = json_field(item, "inputs", list, where)
    outputs = json_field(item, "outputs", list, where)
    if not all(isinstance(n, str) for n in inputs + outputs):
        raise FormatError(f"{where}: node {item.get('name')!r} has non-string tensor names")
    return Node(
        op_type=json_field(item, "op_type", str, where),
        name=json_field(item, "name", str, where),
        inputs=inputs,
        outputs=outputs,
        attrs=json_field(item, "attrs", dict, where),
    )
