"""PoCL's program binary format, checked before PoCL reads one.

PoCL trusts the lengths inside its binaries: a malformed one (e.g. a zero-length field) ends
in an assertion or a segmentation fault inside the driver, which no exception handler sees.
So a binary is walked here first and only one whose every length stays inside it, and which
ends exactly where its last record does, is handed over.

Layout (little-endian; PoCL 5 to 7, binary format versions 9 to 11): the 8-byte magic
``poclbin\\0``, device id (u64), format version (u32), kernel count (u32), flags (u64), root
entry count (u32), the program's build hash (40 hex characters and a NUL), a u64 of
program-scope variable bytes when flag 2 is set; then each root entry as two length-prefixed
strings (u32 length, bytes: a file name and its content); then each kernel record, whose
first field (u64) is the record's whole size.
"""

from __future__ import annotations

import struct

MAGIC = b"poclbin\0"
# The oldest format version PoCL 7 still reads, and the newest it writes.
SUPPORTED_VERSIONS = range(9, 12)
_HEADER = struct.Struct("<8sQIIQI")
_BUILD_HASH_BYTES = 41
_FLAG_PROGRAM_SCOPE_VARIABLES = 1 << 1
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def is_pocl_binary(binary: bytes) -> bool:
    return binary.startswith(MAGIC)


def pocl_binary_problem(binary: bytes) -> str | None:
    """What is wrong with a PoCL binary's structure, or None when PoCL may read it."""
    if len(binary) < _HEADER.size + _BUILD_HASH_BYTES:
        return f"{len(binary)} bytes is shorter than a PoCL binary's header"
    magic, _device, version, kernels, flags, root_entries = _HEADER.unpack_from(binary, 0)
    if magic != MAGIC:
        return "not a PoCL binary"
    if version not in SUPPORTED_VERSIONS:
        return f"PoCL binary format version {version}, not one of {list(SUPPORTED_VERSIONS)}"
    position = _HEADER.size
    if binary[position + _BUILD_HASH_BYTES - 1] != 0:
        return "its build hash is not terminated"
    position += _BUILD_HASH_BYTES
    if flags & _FLAG_PROGRAM_SCOPE_VARIABLES:
        position += _U64.size
    for index in range(root_entries):
        for part in ("name", "content"):
            if position + _U32.size > len(binary):
                return f"root entry {index} ({part}) runs past the end"
            (length,) = _U32.unpack_from(binary, position)
            position += _U32.size + length
            if (part == "name" and length == 0) or position > len(binary):
                return f"root entry {index} has a bad {part} length {length}"
    for index in range(kernels):
        if position + _U64.size > len(binary):
            return f"kernel record {index} runs past the end"
        (size,) = _U64.unpack_from(binary, position)
        if size < _U64.size or position + size > len(binary):
            return f"kernel record {index} has a bad size {size}"
        position += size
    if position != len(binary):
        return f"{len(binary) - position} bytes follow its last record"
    return None
