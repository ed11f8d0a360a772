"""Fuzz targets for the readers of untrusted files: model, compiled-program, manifest, ONNX.

Property of every target: any bytes give either a valid result or the format's documented
error (``FormatError`` for rules_mace files, ``ConversionError`` for ONNX), never another
exception, a hang, or a huge allocation.

Inputs are generated with hypothesis (atheris is not available in the toolchain):

- raw garbage, and garbage behind a correct magic/version prefix;
- byte mutations of valid seed files: bit flips, byte sets, truncation, insertions,
  deletions, splices, repeated chunks, lies in the header-length/version fields;
- structured header edits: the seed's JSON header is parsed, edited (values replaced by
  values of other types, huge/negative numbers, deep nesting, ...), re-serialised and the
  container re-sealed;
- layout edits, re-sealed: blobs exchanged between entries, shared, moved off alignment,
  entries copied under other names.

A checksum-protected container rejects nearly every blind mutation at the SHA-256
trailer, so mutated containers are re-sealed (trailer recomputed) half of the time: that
is what lets the fuzzer reach the header and payload checks behind the checksum.

``run_target`` is shared by ``run_fuzz.py`` (long runs) and the bounded CI tests.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
_REPO = Path(__file__).absolute().parents[2]
for _path in (_REPO / "runtime", _REPO / "tools" / "converter"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from mace_cl.model import container, model_file, program_file  # noqa: E402
from mace_cl.model.container import FormatError  # noqa: E402
from mace_cl.model.graph import Graph, Node, TensorInfo  # noqa: E402
from mace_cl.model.manifest import Manifest, encode_manifest, read_manifest  # noqa: E402
from mace_cl.model.model_file import decode_model, encode_model  # noqa: E402
from mace_cl.model.program_file import (  # noqa: E402
    CompiledProgram,
    CompiledProgramSet,
    DeviceIdentity,
    decode_compiled_programs,
    encode_compiled_programs,
)

# One input must never take longer than this; the slowest valid seed decodes in ~1 ms and
# a converted ONNX seed in well under a second, so anything near it is a hang.
PER_INPUT_SECONDS = 10.0
# Address-space head-room granted to a target above what the process already maps. Inputs
# are at most a few hundred KiB, so a reader needing more trusted a size field.
MEMORY_HEADROOM_BYTES = 1 << 30


# ---- seeds ------------------------------------------------------------------------------


def seed_model_bytes() -> list[bytes]:
    """Valid model files with every constant dtype, attrs of every kind, and metadata."""
    rng = np.random.default_rng(7)
    graph = Graph(
        inputs=[TensorInfo("x", (1, 3, 4, 4)), TensorInfo("z", (1, 8, 4, 4))],
        outputs=[TensorInfo("y", (1, 8, 4, 4))],
        nodes=[
            Node(
                "Conv",
                "conv",
                ["x", "w", "b"],
                ["c"],
                {"pads": [1, 1, 1, 1], "activation": "relu", "activation_max": 6.0, "names": ["a", "b"]},
            ),
            Node("Add", "add", ["c", "z"], ["d"]),
            Node("Reshape", "reshape", ["d", "shape"], ["y"], {"allowzero": 0}),
        ],
        constants={
            "w": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
            "b": rng.standard_normal(8).astype(np.float16),
            "shape": np.array([1, 8, 4, 4], np.int64),
            "i32": np.arange(5, dtype=np.int32),
            "i8": np.array([-1, 2], np.int8),
            "u8": np.array([[255]], np.uint8),
            "flag": np.array([True, False]),
            "empty": np.zeros((0, 3), np.float32),
        },
    )
    small = Graph([TensorInfo("x", (2, 3))], [TensorInfo("y", (2, 3))], [Node("Relu", "r", ["x"], ["y"])])
    return [encode_model(graph, {"name": "seed", "source": "seed.onnx"}), encode_model(small)]


def seed_program_bytes() -> list[bytes]:
    """Valid compiled-program files: two devices, several programs, empty and odd-sized binaries."""
    rng = np.random.default_rng(11)
    programs = CompiledProgramSet(metadata={"model_digest:a.mace": "ab" * 32})
    cpu = DeviceIdentity("Portable Computing Language", "OpenCL 3.0 PoCL", "cpu-haswell", "OpenCL 3.0", "6.0")
    gpu = DeviceIdentity("Vendor", "OpenCL 2.0", "gpu", "OpenCL 2.0", "1.2.3", compiler="offline 4.5")
    for identity in (cpu, gpu):
        for index, size in enumerate((0, 1, 63, 64, 200)):
            key = f"eltwise|-DOP={index}"
            programs.add(identity, CompiledProgram(key, f"{index:064x}", rng.bytes(size)))
    single = CompiledProgramSet()
    single.add(cpu, CompiledProgram("layout|", "f" * 64, b"\x7fELF" + bytes(60)))
    return [encode_compiled_programs(programs), encode_compiled_programs(single)]


def seed_manifest_bytes() -> list[bytes]:
    with_binary = Manifest(
        "net",
        "net.mace",
        "a" * 64,
        "mace_cl_compiled_program.bin",
        "b" * 64,
        ("cpu (PoCL, 6.0, compiler driver)",),
    )
    without = Manifest("net", "net.mace", "c" * 64, None, None)
    return [encode_manifest(with_binary), encode_manifest(without)]


def seed_onnx_bytes() -> list[bytes]:
    """Small ONNX models the converter accepts: conv/bn/relu/add, and gemm/softmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)

    def init(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value.astype(np.float32), name)

    conv = helper.make_graph(
        [
            helper.make_node(
                "Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]
            ),
            helper.make_node("BatchNormalization", ["c", "s", "o", "m", "v"], ["n"], name="bn", epsilon=1e-3),
            helper.make_node("Relu", ["n"], ["r"], name="relu"),
            helper.make_node("Add", ["r", "x2"], ["y"], name="add"),
        ],
        "conv_net",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5]),
            helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 4, 5, 5]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 5, 5])],
        [
            init("w", rng.standard_normal((4, 3, 3, 3))),
            init("b", rng.standard_normal(4)),
            init("s", rng.uniform(0.5, 1.5, 4)),
            init("o", rng.standard_normal(4)),
            init("m", rng.standard_normal(4)),
            init("v", rng.uniform(0.5, 1.5, 4)),
        ],
    )
    dense = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w", "b"], ["g"], name="fc", transB=1),
            helper.make_node("Softmax", ["g"], ["y"], name="softmax", axis=1),
        ],
        "dense_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [init("w", rng.standard_normal((3, 6))), init("b", rng.standard_normal(3))],
    )
    return [
        helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8
        ).SerializeToString()
        for graph, opset in ((conv, 13), (dense, 11))
    ]


# ---- mutations ----------------------------------------------------------------------------

_INTERESTING_INTS = [
    0,
    1,
    7,
    8,
    31,
    32,
    63,
    64,
    65,
    255,
    256,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**40,
    2**63 - 1,
    2**63,
    2**64 - 1,
    container.MAX_HEADER_BYTES,
    container.MAX_HEADER_BYTES + 1,
]
# Byte runs that make parsers recurse, overflow or misparse when repeated or inserted.
_TOKENS = [
    b"[",
    b'{"a":',
    b"9",
    b"-",
    b'"',
    b"\\",
    b"\\u",
    b"\\ud800",
    b"\xff",
    b"\x00",
    b"e999",
    b"NaN",
    b"Infinity",
    b",",
    b":",
    b"\x08\x01",
    b"\x12\x7f",
    b"\x0a\xff\xff\xff\xff\x0f",
]


class RawJson:
    """A JSON text fragment placed verbatim into a header (deep nesting, 5000-digit numbers,
    NaN...) that ``json.dumps`` could not or would not produce."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"RawJson({self.text[:30]!r}{'...' if len(self.text) > 30 else ''} len={len(self.text)})"


_RAW_VALUES = [
    RawJson("[" * 100_000 + "]" * 100_000),
    RawJson('{"a":' * 50_000 + "1" + "}" * 50_000),
    RawJson("9" * 5000),
    RawJson("-" + "9" * 5000),
    RawJson("1e999"),
    RawJson("-1e999"),
    RawJson("NaN"),
    RawJson("Infinity"),
    RawJson("1" + "0" * 400 + ".5"),
    RawJson('"\\ud800"'),
    RawJson('"\\u0000"'),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from([*_INTERESTING_INTS, -1, -(2**63), 0.5, -0.0, 1e308])
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(_RAW_VALUES),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)


def dumps_with_raw(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes ``RawJson`` fragments verbatim."""
    raws: list[str] = []

    def placeholder(item: Any) -> Any:
        if isinstance(item, RawJson):
            raws.append(item.text)
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(item, list):
            return [placeholder(v) for v in item]
        if isinstance(item, dict):
            return {k: placeholder(v) for k, v in item.items()}
        return item

    text = json.dumps(placeholder(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for index, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{index}\x00", ensure_ascii=False), raw, 1)
    return text


def _json_paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _json_paths(value[key], (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_paths(item, (*path, index))


@st.composite
def json_edits(draw: st.DrawFn, document: Any) -> Any:
    """1-3 edits of a JSON document: replace, delete, add, duplicate, or type-swap a value."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_json_paths(document))
        path = draw(st.sampled_from(paths))
        if not path:
            if draw(st.integers(0, 9)) == 0:
                document = draw(json_values)
            continue
        *parent_path, last = path
        parent = document
        for part in parent_path:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "duplicate", "number"]))
        if action == "replace":
            parent[last] = draw(json_values)
        elif action == "delete":
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        elif action == "number" and isinstance(parent[last], int) and not isinstance(parent[last], bool):
            # Off-by-small and wild values for offsets, sizes and dims.
            parent[last] = parent[last] + draw(st.sampled_from([-65, -64, -1, 1, 64, 2**40, -(2**40)]))
    return document


def reseal(data: bytes) -> bytes:
    """Recompute the SHA-256 trailer over everything before it."""
    if len(data) < 32:
        return data
    return data[:-32] + hashlib.sha256(data[:-32]).digest()


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes, splice_from: list[bytes], container: bool) -> bytes:
    buffer = bytearray(data)
    kinds = ["flip", "flip", "set", "truncate", "chop_front", "insert", "delete", "splice", "repeat", "int"]
    if container:
        kinds += ["header_length", "header_length", "version"]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        size = len(buffer)
        position = draw(st.integers(0, size))
        if kind == "flip" and size:
            buffer[min(position, size - 1)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and size:
            buffer[min(position, size - 1)] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del buffer[position:]
        elif kind == "chop_front":
            del buffer[:position]
        elif kind == "insert":
            chunk = draw(st.binary(max_size=32) | st.sampled_from(_TOKENS))
            buffer[position:position] = chunk
        elif kind == "delete":
            del buffer[position : position + draw(st.integers(1, 128))]
        elif kind == "splice":
            donor = draw(st.sampled_from(splice_from))
            start = draw(st.integers(0, len(donor)))
            chunk = donor[start : start + draw(st.integers(1, 512))]
            if draw(st.booleans()):
                buffer[position : position + len(chunk)] = chunk
            else:
                buffer[position:position] = chunk
        elif kind == "repeat":
            chunk = (
                draw(st.sampled_from(_TOKENS))
                if draw(st.booleans())
                else bytes(buffer[position : position + 8])
            )
            buffer[position:position] = chunk * draw(st.sampled_from([2, 100, 5000, 60_000]))
        elif kind == "int":
            width = draw(st.sampled_from([4, 8]))
            value = draw(st.sampled_from(_INTERESTING_INTS)) % (1 << (8 * width))
            buffer[position : position + width] = value.to_bytes(width, "little")
        elif kind == "header_length":
            value = draw(
                st.sampled_from(
                    _INTERESTING_INTS
                    + [int.from_bytes(buffer[16:24], "little") + d for d in (-64, -1, 1, 64)]
                )
            )
            buffer[16:24] = (value % 2**64).to_bytes(8, "little")
        elif kind == "version":
            buffer[8:12] = draw(st.sampled_from([0, 2, 2**32 - 1])).to_bytes(4, "little")
    result = bytes(buffer)
    if container and draw(st.booleans()):
        result = reseal(result)
    return result


def split_container(data: bytes) -> tuple[bytes, int, dict[str, Any], bytes]:
    """(magic, version, header, payload) of a valid container."""
    magic, version, _reserved, header_length = container.PREFIX.unpack_from(data, 0)
    header_end = container.PREFIX.size + header_length
    header = json.loads(data[container.PREFIX.size : header_end])
    payload_start = (header_end + 63) // 64 * 64
    return magic, version, header, data[payload_start:-32]


def seal_container(magic: bytes, version: int, header_text: bytes, payload: bytes) -> bytes:
    head = container.PREFIX.pack(magic, version, 0, len(header_text)) + header_text
    head += b"\0" * ((len(head) + 63) // 64 * 64 - len(head))
    body = head + payload
    return body + hashlib.sha256(body).digest()


@st.composite
def header_edits(draw: st.DrawFn, data: bytes) -> bytes:
    """Edit a valid container's JSON header and re-seal it: the input passes the checksum."""
    magic, version, header, payload = split_container(data)
    edited = draw(json_edits(header))
    if draw(st.integers(0, 4)) == 0:
        payload = payload[: draw(st.integers(0, len(payload)))]
    return seal_container(magic, version, dumps_with_raw(edited).encode("utf-8", "surrogatepass"), payload)


def _blob_entries(header: Any) -> list[dict]:
    """The entries of a container header that name payload blobs (constants, programs)."""
    if not isinstance(header, dict):
        return []
    entries = [e for e in header.get("constants", []) if isinstance(e, dict)]
    for device in header.get("devices", []):
        if isinstance(device, dict):
            entries += [e for e in device.get("programs", []) if isinstance(e, dict)]
    return entries


@st.composite
def layout_edits(draw: st.DrawFn, data: bytes) -> bytes:
    """Re-sealed edits of what the blobs are: exchanged between entries, shared, moved,
    or entries copied under other names -- the class of edit that made decoding copy one blob
    thousands of times and ran one kernel variant's binary as another's."""
    magic, version, header, payload = split_container(data)
    entries = _blob_entries(header)
    if len(entries) >= 2:
        first, second = draw(st.permutations(entries))[:2]
        action = draw(st.sampled_from(["swap", "share", "move", "copies"]))
        if action == "swap":
            for key in ("offset", "nbytes"):
                first[key], second[key] = second.get(key), first.get(key)
        elif action == "share":
            first["offset"], first["nbytes"] = second.get("offset"), second.get("nbytes")
        elif action == "move":
            first["offset"] = first.get("offset", 0) + draw(st.sampled_from([1, 8, 64, -64]))
        else:
            copies = draw(st.integers(1, 50))
            name = "name" if "name" in first else "key"
            clones = [{**first, name: f"{first.get(name)}_{index}"} for index in range(copies)]
            (header["constants"] if "constants" in header else header["devices"][0]["programs"]).extend(
                clones
            )
    return seal_container(magic, version, json.dumps(header).encode("utf-8", "surrogatepass"), payload)


def _version_of(magic: bytes) -> int:
    return (
        model_file.MODEL_FORMAT_VERSION
        if magic == model_file.MODEL_MAGIC
        else program_file.PROGRAMS_FORMAT_VERSION
    )


@st.composite
def generated_containers(draw: st.DrawFn, magic: bytes) -> bytes:
    """A well-sealed container around an arbitrary JSON header and payload."""
    header = draw(json_values | st.dictionaries(st.text(max_size=10), json_values, max_size=6))
    return seal_container(
        magic,
        _version_of(magic),
        dumps_with_raw(header).encode("utf-8", "surrogatepass"),
        draw(st.binary(max_size=256)),
    )


def container_inputs(seeds: list[bytes], magic: bytes) -> st.SearchStrategy[bytes]:
    seed = st.sampled_from(seeds)
    return st.one_of(
        st.binary(max_size=256),
        st.binary(max_size=256).map(
            lambda tail: container.PREFIX.pack(magic, _version_of(magic), 0, len(tail)) + tail
        ),
        seed.flatmap(layout_edits),
        seed.flatmap(lambda data: byte_mutations(data, seeds, container=True)),
        seed.flatmap(lambda data: byte_mutations(data, seeds, container=True)),
        seed.flatmap(header_edits),
        seed.flatmap(header_edits),
        generated_containers(magic),
    )


def manifest_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    def edited(data: bytes) -> st.SearchStrategy[bytes]:
        return json_edits(json.loads(data)).map(
            lambda doc: dumps_with_raw(doc).encode("utf-8", "surrogatepass")
        )

    seed = st.sampled_from(seeds)
    return st.one_of(
        st.binary(max_size=256),
        seed.flatmap(lambda data: byte_mutations(data, seeds, container=False)),
        seed.flatmap(edited),
        seed.flatmap(edited),
        json_values.map(lambda doc: dumps_with_raw(doc).encode("utf-8", "surrogatepass")),
    )


@st.composite
def onnx_proto_edits(draw: st.DrawFn, data: bytes) -> bytes:
    """Semantic edits a byte mutation rarely reaches: ops, dims, dtypes, weights, opsets."""
    import onnx
    from onnx import TensorProto

    model = onnx.ModelProto.FromString(data)
    graph = model.graph
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(["op", "dim", "dtype", "weight", "opset", "attr", "drop_node", "io_name"])
        )
        if kind == "op" and graph.node:
            node = graph.node[draw(st.integers(0, len(graph.node) - 1))]
            node.op_type = draw(
                st.sampled_from(
                    [
                        "Relu",
                        "Conv",
                        "Gemm",
                        "Softmax",
                        "Reshape",
                        "Concat",
                        "Resize",
                        "LSTM",
                        "Loop",
                        "NoSuchOp",
                        "",
                    ]
                )
            )
        elif kind == "dim":
            infos = list(graph.input) + list(graph.output)
            dims = infos[draw(st.integers(0, len(infos) - 1))].type.tensor_type.shape.dim
            if dims:
                dim = dims[draw(st.integers(0, len(dims) - 1))]
                if draw(st.booleans()):
                    dim.dim_param = draw(st.sampled_from(["N", "batch", ""]))
                else:
                    dim.dim_value = draw(st.sampled_from([0, -1, 1, 3, 2**31, 2**62]))
        elif kind == "dtype":
            infos = list(graph.input) + list(graph.output) + list(graph.initializer)
            target = infos[draw(st.integers(0, len(infos) - 1))]
            dtype = draw(
                st.sampled_from(
                    [
                        TensorProto.DOUBLE,
                        TensorProto.INT64,
                        TensorProto.FLOAT16,
                        TensorProto.STRING,
                        TensorProto.BOOL,
                        0,
                        999,
                    ]
                )
            )
            if isinstance(target, onnx.TensorProto):
                target.data_type = dtype
            else:
                target.type.tensor_type.elem_type = dtype
        elif kind == "weight" and graph.initializer:
            tensor = graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
            choice = draw(st.sampled_from(["nan", "inf", "short", "dims"]))
            usable = len(tensor.raw_data) // 4 * 4
            values = np.frombuffer(tensor.raw_data[:usable], np.float32).copy()
            if choice in ("nan", "inf") and values.size:
                values[draw(st.integers(0, values.size - 1))] = np.nan if choice == "nan" else -np.inf
                tensor.raw_data = values.tobytes()
            elif choice == "short":
                tensor.raw_data = tensor.raw_data[: draw(st.integers(0, len(tensor.raw_data)))]
            else:
                del tensor.dims[:]
                tensor.dims.extend(draw(st.lists(st.sampled_from([0, 1, 2, 3, 4, 2**40, -1]), max_size=4)))
        elif kind == "opset":
            model.opset_import[0].version = draw(st.sampled_from([1, 6, 7, 12, 22, 23, 24, 99, 2**40]))
        elif kind == "attr" and graph.node:
            node = graph.node[draw(st.integers(0, len(graph.node) - 1))]
            if node.attribute:
                attribute = node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
                if attribute.ints:
                    attribute.ints[draw(st.integers(0, len(attribute.ints) - 1))] = draw(
                        st.sampled_from([0, -1, 2**31, 100])
                    )
                else:
                    attribute.f = draw(st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 1e30]))
        elif kind == "drop_node" and graph.node:
            del graph.node[draw(st.integers(0, len(graph.node) - 1))]
        elif kind == "io_name":
            infos = list(graph.input) + list(graph.output)
            infos[draw(st.integers(0, len(infos) - 1))].name = draw(
                st.sampled_from(["", "w", "x", "y", "zz"])
            )
    return model.SerializeToString()


def onnx_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seed = st.sampled_from(seeds)
    return st.one_of(
        st.binary(max_size=256),
        seed.flatmap(lambda data: byte_mutations(data, seeds, container=False)),
        seed.flatmap(lambda data: byte_mutations(data, seeds, container=False)),
        seed.flatmap(onnx_proto_edits),
        seed.flatmap(onnx_proto_edits),
    )


# ---- oracles ----------------------------------------------------------------------------


class Finding(AssertionError):
    """A target broke its property: an undocumented exception or an invalid result."""


def check_programs(data: bytes) -> bool:
    try:
        result = decode_compiled_programs(data)
    except FormatError:
        return False
    if result.digest != data[-32:].hex():
        raise Finding(f"digest {result.digest} is not the file's trailer")
    for identity, by_key in result.devices.items():
        if not all(isinstance(v, str) for v in identity.to_json().values()):
            raise Finding(f"device identity with non-string fields: {identity}")
        for key, program in by_key.items():
            if not (
                isinstance(program.binary, bytes)
                and isinstance(program.source_hash, str)
                and key == program.key
            ):
                raise Finding(f"malformed program entry {program!r:.200}")
    # What a valid file decodes to must survive a round trip unchanged.
    again = decode_compiled_programs(encode_compiled_programs(result))
    if again.devices != result.devices or again.metadata != result.metadata:
        raise Finding("decoded compiled programs do not round-trip")
    return True


def check_model(data: bytes) -> bool:
    try:
        model = decode_model(data)
    except FormatError:
        return False
    if model.digest != data[-32:].hex():
        raise Finding(f"digest {model.digest} is not the file's trailer")
    for name, value in model.graph.constants.items():
        if not isinstance(value, np.ndarray) or value.dtype.name not in model_file.CONSTANT_DTYPES:
            raise Finding(
                f"constant {name!r} decoded to {type(value).__name__} {getattr(value, 'dtype', '')}"
            )
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise Finding(
                f"constant {name!r} with non-finite values was accepted; the format stores finite weights"
            )
    again = decode_model(encode_model(model.graph, model.metadata))
    if again.graph.inputs != model.graph.inputs or again.graph.nodes != model.graph.nodes:
        raise Finding("decoded model does not round-trip")
    return True


# Readers taking a path get their input through one file per process, removed at exit.
_scratch = Path(tempfile.mkdtemp(prefix="mace_fuzz_"))
atexit.register(shutil.rmtree, _scratch, ignore_errors=True)


def check_manifest(data: bytes) -> bool:
    path = _scratch / f"manifest-{os.getpid()}.json"
    path.write_bytes(data)
    try:
        manifest = read_manifest(path)
    except FormatError:
        return False
    strings = [manifest.name, manifest.model, manifest.model_digest, *manifest.devices]
    if manifest.compiled_program is not None:
        strings += [manifest.compiled_program, manifest.compiled_program_digest]
    if not all(isinstance(s, str) for s in strings):
        raise Finding(f"manifest with non-string fields accepted: {manifest!r:.300}")
    path.write_bytes(encode_manifest(manifest))
    if read_manifest(path) != manifest:
        raise Finding("manifest does not round-trip")
    return True


def check_onnx(data: bytes) -> bool:
    from mace_cl_converter import ConversionError, convert_model

    path = _scratch / f"model-{os.getpid()}.onnx"
    path.write_bytes(data)
    try:
        graph = convert_model(path)
    except ConversionError:
        return False
    # mace_convert writes what it converted; the model format refuses non-finite weights
    # with a FormatError naming the constant, which the CLI reports like a ConversionError.
    try:
        encode_model(graph)
    except FormatError:
        return False
    return True


# ---- targets and the runner -------------------------------------------------------------


@dataclass
class Target:
    name: str
    strategy: Callable[[], st.SearchStrategy[bytes]]
    check: Callable[[bytes], bool]  # True: accepted; False: documented error
    seeds: Callable[[], list[bytes]]


def _targets() -> dict[str, Target]:
    return {
        "programs": Target(
            "programs",
            lambda: container_inputs(seed_program_bytes(), program_file.PROGRAMS_MAGIC),
            check_programs,
            seed_program_bytes,
        ),
        "model": Target(
            "model",
            lambda: container_inputs(seed_model_bytes(), model_file.MODEL_MAGIC),
            check_model,
            seed_model_bytes,
        ),
        "manifest": Target(
            "manifest", lambda: manifest_inputs(seed_manifest_bytes()), check_manifest, seed_manifest_bytes
        ),
        "onnx": Target("onnx", lambda: onnx_inputs(seed_onnx_bytes()), check_onnx, seed_onnx_bytes),
    }


TARGETS = _targets()


@dataclass
class CrashRecord:
    data: bytes
    error: str
    trace: str


@dataclass
class RunResult:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    slowest_seconds: float = 0.0
    accepted: int = 0  # inputs decoded successfully (the rest raised the documented error)
    crashes: list[CrashRecord] = field(default_factory=list)

    @property
    def inputs_per_second(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0


class _Hang(BaseException):
    """Raised from SIGALRM; a BaseException so a reader's ``except Exception`` cannot eat it."""


@contextmanager
def memory_limit(headroom: int = MEMORY_HEADROOM_BYTES) -> Iterator[None]:
    """Cap the address space at what is mapped now plus ``headroom``: a reader that allocates
    what a size field claims gets MemoryError (a finding) instead of swapping the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as stream:
        mapped = int(stream.read().split()[0]) * resource.getpagesize()
    limit = mapped + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _on_alarm(_signum: int, _frame: object) -> None:
    raise _Hang()


def run_target(
    target: Target,
    examples: int,
    seed: int | None = None,
    progress: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Feed ``examples`` generated inputs to the target; every broken property is recorded,
    not raised, so a long run counts all crashes instead of stopping at the first."""
    result = RunResult(target.name)
    check = target.check
    for data in target.seeds():  # the seeds themselves must decode
        check(data)

    @settings(
        max_examples=examples,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy())
    def one(data: bytes) -> None:
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, PER_INPUT_SECONDS)
        try:
            result.accepted += bool(check(data))
        except _Hang:
            result.crashes.append(CrashRecord(data, f"hang: over {PER_INPUT_SECONDS} s", ""))
        except Exception as exc:  # every other exception breaks the property: record it
            result.crashes.append(
                CrashRecord(data, f"{type(exc).__name__}: {str(exc)[:300]}", traceback.format_exc(limit=8))
            )
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        elapsed = time.perf_counter() - started
        result.slowest_seconds = max(result.slowest_seconds, elapsed)
        result.inputs += 1
        if progress is not None and result.inputs % 5000 == 0:
            result.seconds = time.perf_counter() - run_started
            progress(result)

    if seed is not None:
        one = hypothesis_seed(seed)(one)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    run_started = time.perf_counter()
    try:
        with memory_limit():
            one()
    finally:
        signal.signal(signal.SIGALRM, previous)
        result.seconds = time.perf_counter() - run_started
    return result
