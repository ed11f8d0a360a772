"""The on-disk formats shared by the build tools and the runtime.

Two files, one container layout (docs/formats.md):

- the model file (``.mace``): the graph and its weights;
- the compiled-program file (``mace_cl_compiled_program.bin``): OpenCL program binaries
  per device, each tied to the exact program source and build options it came from.

Container layout, all integers little-endian::

    magic (8 bytes) | format version (u32) | reserved (u32, 0) | header length H (u64)
    header: H bytes of canonical JSON (sorted keys, no spaces, UTF-8)
    zero padding to a multiple of 64 bytes
    payload: blobs at 64-byte aligned offsets given in the header (relative to payload start)
    trailer: SHA-256 of every preceding byte (32 bytes)

Canonical JSON and aligned offsets make the bytes a pure function of the content, so two
builds of the same inputs give identical files. The trailer doubles as the content digest.
Readers treat every file as untrusted: bounds, types and the digest are checked before any
value is used, and every problem raises ``FormatError`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import stat
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from mace_cl.graph import Graph, Node, TensorInfo

MODEL_MAGIC = b"MACEMODL"
MODEL_FORMAT_VERSION = 1
PROGRAMS_MAGIC = b"MACECLPB"
# 2: each program's digest binds its binary to its key, source hash and device identity.
PROGRAMS_FORMAT_VERSION = 2
COMPILED_PROGRAM_FILE_NAME = "mace_cl_compiled_program.bin"

_PREFIX = struct.Struct("<8sIIQ")
_DIGEST_BYTES = 32
_ALIGN = 64
# Refuse absurd sizes before allocating anything: a header is metadata, never megabytes
# of it, and a file is read whole.
MAX_HEADER_BYTES = 64 << 20
MAX_FILE_BYTES = 4 << 30

# Constant dtypes a model file may hold, by their numpy name.
CONSTANT_DTYPES = ("float32", "float16", "int64", "int32", "int8", "uint8", "bool")


class FormatError(ValueError):
    """A model or compiled-program file is unreadable, corrupt or of another version."""


# ---- container ----------------------------------------------------------------------


def _canonical_json(value: object) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _aligned(size: int) -> int:
    return (size + _ALIGN - 1) // _ALIGN * _ALIGN


def _pack_container(
    magic: bytes, version: int, header: dict[str, Any], blobs: list[bytes]
) -> tuple[bytes, list[int]]:
    """Returns the file bytes and the payload offset of each blob (already put in ``header``)."""
    header_bytes = _canonical_json(header)
    prefix = _PREFIX.pack(magic, version, 0, len(header_bytes))
    head = prefix + header_bytes
    head += b"\0" * (_aligned(len(head)) - len(head))
    payload = bytearray()
    offsets = []
    for blob in blobs:
        payload += b"\0" * (_aligned(len(payload)) - len(payload))
        offsets.append(len(payload))
        payload += blob
    body = head + bytes(payload)
    return body + hashlib.sha256(body).digest(), offsets


def _blob_layout(sizes: Iterable[int]) -> list[int]:
    """Payload offsets ``_pack_container`` will give blobs of these sizes."""
    offsets = []
    end = 0
    for size in sizes:
        start = _aligned(end)
        offsets.append(start)
        end = start + size
    return offsets


@dataclass(frozen=True)
class _Container:
    version: int
    header: dict[str, Any]
    payload: memoryview
    digest: str


def _unpack_container(data: bytes, magic: bytes, supported_version: int, what: str, where: str) -> _Container:
    if len(data) < _PREFIX.size + _DIGEST_BYTES:
        raise FormatError(f"{where}: too short to be a {what} ({len(data)} bytes)")
    found_magic, version, _reserved, header_len = _PREFIX.unpack_from(data, 0)
    if found_magic != magic:
        # The bytes found are not quoted: the file may be anything, e.g. a private one.
        raise FormatError(f"{where}: not a {what} (it does not start with {magic!r})")
    if version != supported_version:
        raise FormatError(
            f"{where}: {what} format version {version}, this runtime reads version "
            f"{supported_version}; rebuild the file with the matching tools"
        )
    body, trailer = data[:-_DIGEST_BYTES], data[-_DIGEST_BYTES:]
    if hashlib.sha256(body).digest() != trailer:
        raise FormatError(f"{where}: checksum mismatch, the {what} is corrupt or truncated")
    header_end = _PREFIX.size + header_len
    if header_len > MAX_HEADER_BYTES or header_end > len(body):
        raise FormatError(f"{where}: header length {header_len} does not fit the file")
    try:
        header = json.loads(bytes(data[_PREFIX.size : header_end]).decode("utf-8"))
    # ValueError besides JSONDecodeError: integers over Python's 4300-digit limit;
    # RecursionError: nesting deeper than the parser's stack allows.
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"{where}: header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FormatError(f"{where}: header is not a JSON object")
    _check_unicode(header, where)
    payload_start = _aligned(header_end)
    if payload_start > len(body):
        raise FormatError(f"{where}: header padding runs past the end of the file")
    return _Container(version, header, memoryview(body)[payload_start:], trailer.hex())


def _check_unicode(value: Any, where: str) -> None:
    """JSON escapes can spell lone surrogates ("\\ud800"), which no UTF-8 text holds: such a
    string would break every later encode (names in paths, logs, rewritten files)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError) as exc:
        raise FormatError(f"{where}: header holds text that is not valid Unicode ({exc})") from None


_NOT_REGULAR = [
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
]


def read_regular_file(path: str | Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file, read with a hard bound; FormatError for anything else.

    Opened without blocking and checked on the open descriptor: a FIFO or device (whose size
    reads 0) is refused before any read, never waited on or read without end. At most the size
    the file had when opened is read.
    """
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise FormatError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        kind = next((name for test, name in _NOT_REGULAR if test(info.st_mode)), "not a regular file")
        raise FormatError(f"{path}: is {kind}; the {what} must be a regular file")
    with os.fdopen(descriptor, "rb", buffering=0) as stream:
        if info.st_size > max_bytes:
            raise FormatError(f"{path}: {info.st_size} bytes is larger than any {what} this runtime accepts")
        chunks, left = [], info.st_size
        try:
            while left > 0:
                chunk = stream.read(min(left, 1 << 24))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        except OSError as exc:
            raise FormatError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    return b"".join(chunks)


def write_atomically(path: str | Path, data: bytes) -> None:
    """Write via a temporary file and rename, so readers never see a partial file.

    The temporary name is unique per writer: several processes may write one path at once.
    It is created with mode 0666 less the umask, as any file a tool writes (mkstemp's 0600
    would make outputs unreadable to everyone else).
    """
    path = Path(path)
    while True:
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _field(mapping: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise FormatError(f"{where}: missing field {key!r}")
    value = mapping[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormatError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_layout(entries: Iterable[Mapping[str, Any]], payload_size: int, what: str, where: str) -> None:
    """Blobs are 64-byte aligned and never overlap, as _pack_container lays them out.

    Checked before anything is decoded: entries sharing one blob would each copy it, so a small
    file could make decoding take memory and time out of all proportion to its size.
    """
    spans = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise FormatError(f"{where}: a {what} entry is not an object")
        offset, nbytes = entry.get("offset"), entry.get("nbytes")
        if not (_is_int(offset) and _is_int(nbytes)):
            raise FormatError(f"{where}: {what} has a malformed offset or size")
        if offset < 0 or nbytes < 0 or offset + nbytes > payload_size:
            raise FormatError(
                f"{where}: {what} blob [{offset}, {offset + nbytes}) lies outside the payload "
                f"({payload_size} bytes)"
            )
        if offset % _ALIGN:
            raise FormatError(f"{where}: {what} at offset {offset} is not {_ALIGN}-byte aligned")
        spans.append((offset, nbytes))
    end = 0
    for offset, nbytes in sorted(spans):
        if nbytes and offset < end:
            raise FormatError(
                f"{where}: {what} blobs overlap at offset {offset}; each must have its own bytes"
            )
        end = max(end, offset + nbytes)


def _check_format(header: Mapping[str, Any], expected: str, where: str) -> None:
    if header.get("format") != expected:
        raise FormatError(
            f"{where}: header field 'format' is {header.get('format')!r}, expected {expected!r}"
        )


def _blob(payload: memoryview, offset: Any, nbytes: Any, where: str) -> memoryview:
    if (
        not (isinstance(offset, int) and isinstance(nbytes, int))
        or isinstance(offset, bool)
        or isinstance(nbytes, bool)
    ):
        raise FormatError(f"{where}: blob offset/size must be integers")
    if offset < 0 or nbytes < 0 or offset + nbytes > len(payload):
        raise FormatError(
            f"{where}: blob [{offset}, {offset + nbytes}) lies outside the payload ({len(payload)} bytes)"
        )
    return payload[offset : offset + nbytes]


# ---- model file -----------------------------------------------------------------------


@dataclass
class ModelFile:
    """A model as stored: the graph, free-form string metadata, and the file's digest."""

    graph: Graph
    metadata: dict[str, str] = field(default_factory=dict)
    digest: str = ""  # SHA-256 hex of the file (its trailer); empty until written or read


def encode_model(graph: Graph, metadata: Mapping[str, str] | None = None) -> bytes:
    """The model file's bytes; a pure function of the graph, its weights and the metadata."""
    graph.validate()
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
    offsets = _blob_layout(a.nbytes for a in arrays)
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
        "metadata": dict(sorted((metadata or {}).items())),
    }
    data, _ = _pack_container(MODEL_MAGIC, MODEL_FORMAT_VERSION, header, [a.tobytes() for a in arrays])
    return data


def write_model(graph: Graph, path: str | Path, metadata: Mapping[str, str] | None = None) -> str:
    """Writes the model file atomically; returns its digest."""
    data = encode_model(graph, metadata)
    write_atomically(path, data)
    return data[-_DIGEST_BYTES:].hex()


def decode_model(data: bytes, where: str = "model") -> ModelFile:
    container = _unpack_container(data, MODEL_MAGIC, MODEL_FORMAT_VERSION, "rules_mace model file", where)
    header = container.header
    try:
        _check_format(header, "mace-model", where)
        _check_layout(_field(header, "constants", list, where), len(container.payload), "constant", where)
        inputs = [_tensor_info_from_json(item, where) for item in _field(header, "inputs", list, where)]
        outputs = [_tensor_info_from_json(item, where) for item in _field(header, "outputs", list, where)]
        nodes = [_node_from_json(item, where) for item in _field(header, "nodes", list, where)]
        constants = {}
        for item in _field(header, "constants", list, where):
            name = _field(item, "name", str, where)
            dtype = _field(item, "dtype", str, where)
            if dtype not in CONSTANT_DTYPES:
                raise FormatError(f"{where}: constant {name!r} has unknown dtype {dtype!r}")
            shape = tuple(_field(item, "shape", list, where))
            if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                raise FormatError(f"{where}: constant {name!r} has a malformed shape {list(shape)}")
            blob = _blob(
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
        metadata = _field(header, "metadata", dict, where)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise FormatError(f"{where}: metadata must map strings to strings")
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{where}: malformed model header ({exc})") from None
    graph = Graph(inputs=inputs, outputs=outputs, nodes=nodes, constants=constants)
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
    shape = _field(item, "shape", list, where)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise FormatError(f"{where}: tensor {item.get('name')!r} has a malformed shape")
    return TensorInfo(_field(item, "name", str, where), tuple(shape), _field(item, "dtype", str, where))


def _node_from_json(item: Any, where: str) -> Node:
    inputs = _field(item, "inputs", list, where)
    outputs = _field(item, "outputs", list, where)
    if not all(isinstance(n, str) for n in inputs + outputs):
        raise FormatError(f"{where}: node {item.get('name')!r} has non-string tensor names")
    return Node(
        op_type=_field(item, "op_type", str, where),
        name=_field(item, "name", str, where),
        inputs=inputs,
        outputs=outputs,
        attrs=_field(item, "attrs", dict, where),
    )


# ---- compiled-program file ----------------------------------------------------------------


@dataclass(frozen=True)
class DeviceIdentity:
    """What a program binary is valid for.

    Binaries a device's own driver built (``compiler == "driver"``) are used only on an exact
    match. Cross-compiled binaries describe a target instead of one device: see
    ``nvptx_identity`` / ``nvptx_target_capability`` (PTX) and ``nvidia_sass_identity`` /
    ``nvidia_sass_capability`` (machine code).
    """

    platform_name: str
    platform_version: str
    device_name: str
    device_version: str
    driver_version: str
    # Who produced the binaries: "driver" when the device's own OpenCL compiler built them,
    # otherwise the offline compiler and its version (cross-compiled binaries).
    compiler: str = "driver"

    def to_json(self) -> dict[str, str]:
        return {
            "platform_name": self.platform_name,
            "platform_version": self.platform_version,
            "device_name": self.device_name,
            "device_version": self.device_version,
            "driver_version": self.driver_version,
            "compiler": self.compiler,
        }

    @staticmethod
    def from_json(item: Any, where: str) -> DeviceIdentity:
        return DeviceIdentity(
            **{
                key: _field(item, key, str, where)
                for key in (
                    "platform_name",
                    "platform_version",
                    "device_name",
                    "device_version",
                    "driver_version",
                    "compiler",
                )
            }
        )

    def describe(self) -> str:
        if self.compiler != "driver" and not self.driver_version:  # a cross-compile target
            return f"{self.platform_name} {self.device_name} (compiler {self.compiler})"
        return f"{self.device_name} ({self.platform_name}, {self.driver_version}, compiler {self.compiler})"


# Cross-compiled PTX for NVIDIA GPUs (docs/formats.md). The platform name is the one NVIDIA's
# OpenCL reports; the compiler field reads "clang-<version> nvptx64 sm_<XY> libclc-<major>".
NVIDIA_PLATFORM_NAME = "NVIDIA CUDA"
NVPTX_COMPILER_TARGET = "nvptx64"
# sm_<major><minor>: the last digit is the minor version (sm_86 is 8.6, sm_100 is 10.0).
# Arch-specific variants (sm_90a) are left out on purpose: their PTX runs on that one
# architecture only, while the runtime accepts plain PTX on every later GPU.
_NVPTX_ARCH = re.compile(r"sm_([1-9][0-9]*)([0-9])")


def parse_nvptx_arch(arch: str) -> tuple[int, int] | None:
    """The compute capability of an NVIDIA architecture name ("sm_90" -> (9, 0)), None if not one."""
    found = _NVPTX_ARCH.fullmatch(arch)
    return None if found is None else (int(found.group(1)), int(found.group(2)))


def nvptx_identity(arch: str, clang_version: str, libclc: str) -> DeviceIdentity:
    """The identity PTX cross-compiled for ``arch`` is recorded under.

    Only the platform name and the architecture describe the target; the version and driver
    fields stay empty because no one device or driver built it.
    """
    if parse_nvptx_arch(arch) is None:
        raise ValueError(
            f"not an NVIDIA architecture name: {arch!r} (expected sm_<major><minor>, e.g. sm_90)"
        )
    return DeviceIdentity(
        platform_name=NVIDIA_PLATFORM_NAME,
        platform_version="",
        device_name=arch,
        device_version="",
        driver_version="",
        compiler=f"clang-{clang_version} {NVPTX_COMPILER_TARGET} {arch} {libclc}",
    )


def nvptx_target_capability(identity: DeviceIdentity) -> tuple[int, int] | None:
    """The compute capability a cross-compiled PTX identity targets; None for any other identity.

    Strict on purpose: an identity that is not exactly what ``nvptx_identity`` writes is treated
    as a driver identity (exact match only), never as PTX that may run on other devices.
    """
    parts = identity.compiler.split()
    if (
        identity.platform_name != NVIDIA_PLATFORM_NAME
        or len(parts) != 4
        or not parts[0].startswith("clang-")
        or parts[1] != NVPTX_COMPILER_TARGET
        or parts[2] != identity.device_name
        or identity.platform_version
        or identity.device_version
        or identity.driver_version
    ):
        return None
    return parse_nvptx_arch(parts[2])


# Machine code (SASS, in a cubin) assembled by ptxas from that PTX: the compiler field reads
# "<the PTX identity's compiler> ptxas-<version> sass <arch>". It runs on GPUs of the same
# major architecture and at least its minor version only (sm_80 code on 8.0, 8.6, 8.9).
NVIDIA_SASS = "sass"


def nvidia_sass_identity(ptx: DeviceIdentity, arch: str, ptxas_version: str) -> DeviceIdentity:
    """The identity cubins assembled for ``arch`` from the PTX of identity ``ptx`` are recorded under."""
    if nvptx_target_capability(ptx) is None:
        raise ValueError(f"not a cross-compiled PTX identity: {ptx.describe()}")
    if parse_nvptx_arch(arch) is None:
        raise ValueError(
            f"not an NVIDIA architecture name: {arch!r} (expected sm_<major><minor>, e.g. sm_90)"
        )
    return DeviceIdentity(
        platform_name=NVIDIA_PLATFORM_NAME,
        platform_version="",
        device_name=arch,
        device_version="",
        driver_version="",
        compiler=f"{ptx.compiler} ptxas-{ptxas_version} {NVIDIA_SASS} {arch}",
    )


def nvidia_sass_capability(identity: DeviceIdentity) -> tuple[int, int] | None:
    """The compute capability a cubin identity was assembled for; None for any other identity."""
    parts = identity.compiler.split()
    if len(parts) != 7 or parts[4].partition("-")[0] != "ptxas" or parts[5] != NVIDIA_SASS:
        return None
    ptx = DeviceIdentity(identity.platform_name, "", parts[2], "", "", " ".join(parts[:4]))
    if nvptx_target_capability(ptx) is None or parts[6] != identity.device_name:
        return None
    if identity.platform_version or identity.device_version or identity.driver_version:
        return None
    return parse_nvptx_arch(parts[6])


def program_source_hash(source: str, options: Iterable[str]) -> str:
    """Ties a binary to the exact text and options it was compiled from."""
    digest = hashlib.sha256()
    digest.update(source.encode("utf-8"))
    for option in options:
        digest.update(b"\0" + option.encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True)
class CompiledProgram:
    key: str  # ProgramSpec.key
    source_hash: str  # program_source_hash(source, options)
    binary: bytes


@dataclass
class CompiledProgramSet:
    """All binaries of one file: per device identity, per program key."""

    devices: dict[DeviceIdentity, dict[str, CompiledProgram]] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    digest: str = ""

    def add(self, identity: DeviceIdentity, program: CompiledProgram) -> None:
        self.devices.setdefault(identity, {})[program.key] = program

    def lookup(self, identity: DeviceIdentity, key: str, source_hash: str) -> CompiledProgram | None:
        """The binary for this device and program, only if it was built from this very source."""
        program = self.devices.get(identity, {}).get(key)
        if program is None or program.source_hash != source_hash:
            return None
        return program


def program_digest(identity: DeviceIdentity, key: str, source_hash: str, binary: bytes) -> str:
    """SHA-256 binding a binary to the program key, source and device it was built for.

    A binary moved under another key or device (another variant of the same kernel, say)
    with the file's checksums redone no longer matches its digest: it is refused, never run.
    """
    digest = hashlib.sha256(
        _canonical_json({"identity": identity.to_json(), "key": key, "source_hash": source_hash})
    )
    digest.update(b"\0")
    digest.update(binary)
    return digest.hexdigest()


def encode_compiled_programs(programs: CompiledProgramSet) -> bytes:
    """Deterministic bytes: devices and programs are sorted, whatever order they were added in."""
    blobs: list[bytes] = []
    device_entries = []
    ordered = sorted(programs.devices.items(), key=lambda item: _canonical_json(item[0].to_json()))
    sizes = [len(p.binary) for _, by_key in ordered for _, p in sorted(by_key.items())]
    offsets = iter(_blob_layout(sizes))
    for identity, by_key in ordered:
        entries = []
        for key, program in sorted(by_key.items()):
            entries.append(
                {
                    "key": key,
                    "source_hash": program.source_hash,
                    "offset": next(offsets),
                    "nbytes": len(program.binary),
                    "program_sha256": program_digest(identity, key, program.source_hash, program.binary),
                }
            )
            blobs.append(program.binary)
        device_entries.append({"identity": identity.to_json(), "programs": entries})
    header = {
        "format": "mace-cl-compiled-programs",
        "devices": device_entries,
        "metadata": dict(sorted(programs.metadata.items())),
    }
    data, _ = _pack_container(PROGRAMS_MAGIC, PROGRAMS_FORMAT_VERSION, header, blobs)
    return data


def write_compiled_programs(programs: CompiledProgramSet, path: str | Path) -> str:
    data = encode_compiled_programs(programs)
    write_atomically(path, data)
    return data[-_DIGEST_BYTES:].hex()


def decode_compiled_programs(data: bytes, where: str = "compiled-program file") -> CompiledProgramSet:
    container = _unpack_container(
        data, PROGRAMS_MAGIC, PROGRAMS_FORMAT_VERSION, "compiled-program file", where
    )
    result = CompiledProgramSet(digest=container.digest)
    try:
        _check_format(container.header, "mace-cl-compiled-programs", where)
        devices = _field(container.header, "devices", list, where)
        _check_layout(
            [entry for device in devices for entry in _field(device, "programs", list, where)],
            len(container.payload),
            "program",
            where,
        )
        metadata = _field(container.header, "metadata", dict, where)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise FormatError(f"{where}: metadata must map strings to strings")
        result.metadata = metadata
        for device in devices:
            identity = DeviceIdentity.from_json(_field(device, "identity", dict, where), where)
            for entry in _field(device, "programs", list, where):
                key = _field(entry, "key", str, where)
                source_hash = _field(entry, "source_hash", str, where)
                blob = bytes(
                    _blob(
                        container.payload,
                        entry.get("offset"),
                        entry.get("nbytes"),
                        f"{where}: program {key!r}",
                    )
                )
                if program_digest(identity, key, source_hash, blob) != _field(
                    entry, "program_sha256", str, where
                ):
                    raise FormatError(
                        f"{where}: program {key!r}: the binary is not the one recorded for this key, "
                        "source and device (swapped or edited); rebuild the file"
                    )
                result.add(identity, CompiledProgram(key, source_hash, blob))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{where}: malformed compiled-program header ({exc})") from None
    return result


def read_compiled_programs(path: str | Path) -> CompiledProgramSet:
    return decode_compiled_programs(read_regular_file(path, "compiled-program file"), where=str(path))


# ---- build manifest ------------------------------------------------------------------------

MANIFEST_FILE_NAME = "manifest.json"
MANIFEST_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """Ties a built model file to its compiled-program file (both named relative to the manifest).

    The digests let the runtime refuse a swapped file; ``compiled_program`` is None when the
    build made no binaries (the "none" OpenCL target: everything compiles at start-up).
    """

    name: str
    model: str
    model_digest: str
    compiled_program: str | None
    compiled_program_digest: str | None
    devices: tuple[str, ...] = ()  # DeviceIdentity.describe() of each device in the .bin

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "mace-manifest",
            "version": MANIFEST_FORMAT_VERSION,
            "name": self.name,
            "model": {"path": self.model, "digest": self.model_digest},
            "compiled_program": None
            if self.compiled_program is None
            else {
                "path": self.compiled_program,
                "digest": self.compiled_program_digest,
                "devices": list(self.devices),
            },
        }


def encode_manifest(manifest: Manifest) -> bytes:
    return json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode("utf-8") + b"\n"


def _neighbour(name: str, where: str) -> str:
    """A file the manifest names: a plain name in the manifest's own folder (mace_manifest
    writes nothing else), so a manifest can never make the runtime open a file elsewhere."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise FormatError(f"{where}: names {name!r}; a manifest may only name files in its own folder")
    return name


def read_manifest(path: str | Path) -> Manifest:
    where = str(path)
    data = read_regular_file(path, "build manifest")
    try:
        item = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # see _unpack_container
        raise FormatError(f"{where}: not a JSON build manifest ({exc})") from None
    if not isinstance(item, dict) or item.get("format") != "mace-manifest":
        raise FormatError(f"{where}: not a rules_mace build manifest")
    _check_unicode(item, where)
    if item.get("version") != MANIFEST_FORMAT_VERSION:
        raise FormatError(
            f"{where}: manifest version {item.get('version')!r}, this runtime reads {MANIFEST_FORMAT_VERSION}"
        )
    model = _field(item, "model", dict, where)
    compiled = item.get("compiled_program")
    if compiled is not None and not isinstance(compiled, dict):
        raise FormatError(f"{where}: field 'compiled_program' must be an object or null")
    devices = () if compiled is None else tuple(_field(compiled, "devices", list, where))
    if not all(isinstance(device, str) for device in devices):
        raise FormatError(f"{where}: field 'devices' must list strings")
    return Manifest(
        name=_field(item, "name", str, where),
        model=_neighbour(_field(model, "path", str, where), where),
        model_digest=_field(model, "digest", str, where),
        compiled_program=None
        if compiled is None
        else _neighbour(_field(compiled, "path", str, where), where),
        compiled_program_digest=None if compiled is None else _field(compiled, "digest", str, where),
        devices=devices,
    )
