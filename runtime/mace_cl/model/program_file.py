"""The compiled-program file (``mace_cl_compiled_program.bin``): OpenCL program binaries per
device identity, each bound to the program source and build options it came from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mace_cl.model.container import (
    DIGEST_BYTES,
    FormatError,
    blob_layout,
    blob_view,
    canonical_json,
    check_blob_layout,
    check_format,
    json_field,
    pack_container,
    read_regular_file,
    unpack_container,
    write_atomically,
)
from mace_cl.model.device_identity import DeviceIdentity
from mace_cl.model.tuning_file import TuningTable, tuning_from_json, tuning_to_json

PROGRAMS_MAGIC = b"MACECLPB"
# 2: each program's digest binds its binary to its key, source hash and device identity.
PROGRAMS_FORMAT_VERSION = 2
COMPILED_PROGRAM_FILE_NAME = "mace_cl_compiled_program.bin"


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
    # Tuned local sizes (the optional ``tuning`` section; files without one have none).
    tuning: TuningTable = field(default_factory=TuningTable)
    # Why a present tuning section was ignored: a bad one costs speed, never the binaries.
    tuning_problem: str | None = None

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
        canonical_json({"identity": identity.to_json(), "key": key, "source_hash": source_hash})
    )
    digest.update(b"\0")
    digest.update(binary)
    return digest.hexdigest()


def encode_compiled_programs(programs: CompiledProgramSet) -> bytes:
    """Deterministic bytes: devices and programs are sorted, whatever order they were added in."""
    blobs: list[bytes] = []
    device_entries = []
    ordered = sorted(programs.devices.items(), key=lambda item: canonical_json(item[0].to_json()))
    sizes = [len(p.binary) for _, by_key in ordered for _, p in sorted(by_key.items())]
    offsets = iter(blob_layout(sizes))
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
    if programs.tuning:  # absent otherwise: a file without tuning keeps its bytes and digest
        header["tuning"] = tuning_to_json(programs.tuning)
    data, _ = pack_container(PROGRAMS_MAGIC, PROGRAMS_FORMAT_VERSION, header, blobs)
    return data


def write_compiled_programs(programs: CompiledProgramSet, path: str | Path) -> str:
    data = encode_compiled_programs(programs)
    write_atomically(path, data)
    return data[-DIGEST_BYTES:].hex()


def decode_compiled_programs(data: bytes, where: str = "compiled-program file") -> CompiledProgramSet:
    container = unpack_container(
        data, PROGRAMS_MAGIC, PROGRAMS_FORMAT_VERSION, "compiled-program file", where
    )
    result = CompiledProgramSet(digest=container.digest)
    try:
        check_format(container.header, "mace-cl-compiled-programs", where)
        devices = json_field(container.header, "devices", list, where)
        check_blob_layout(
            [entry for device in devices for entry in json_field(device, "programs", list, where)],
            len(container.payload),
            "program",
            where,
        )
        metadata = json_field(container.header, "metadata", dict, where)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise FormatError(f"{where}: metadata must map strings to strings")
        result.metadata = metadata
        for device in devices:
            identity = DeviceIdentity.from_json(json_field(device, "identity", dict, where), where)
            for entry in json_field(device, "programs", list, where):
                key = json_field(entry, "key", str, where)
                source_hash = json_field(entry, "source_hash", str, where)
                blob = bytes(
                    blob_view(
                        container.payload,
                        entry.get("offset"),
                        entry.get("nbytes"),
                        f"{where}: program {key!r}",
                    )
                )
                if program_digest(identity, key, source_hash, blob) != json_field(
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
    if "tuning" in container.header:
        try:
            result.tuning = tuning_from_json(container.header["tuning"], f"{where}: tuning")
        except FormatError as exc:
            result.tuning_problem = str(exc)
    return result


def read_compiled_programs(path: str | Path) -> CompiledProgramSet:
    return decode_compiled_programs(read_regular_file(path, "compiled-program file"), where=str(path))
