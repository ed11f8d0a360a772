"""PoCL's program binary format, checked before PoCL reads one.

PoCL trusts the lengths inside its binaries: a malformed one (e.g. a zero-length field) ends
in an assertion or a segmentation fault inside the driver, which no exception handler sees,
and it writes each file a binary carries into its cache under the file's own name. So a binary
is walked here first, and only one whose every length stays inside its record, whose file
names stay inside the cache folder, and which ends exactly where its last record does, is
handed over.

Layout (little-endian; PoCL 5 to 7, binary format versions 9 to 11): the 8-byte magic
``poclbin\\0``, device id (u64), format version (u32), kernel count (u32), flags (u64), root
entry count (u32), the program's build hash (40 hex characters and a NUL), a u64 of
program-scope variable bytes when flag 2 is set. Then each root entry: its size (u64) and
that many bytes of files. Then each kernel record: its whole size (u64), the size of the files
that end it (u64), the size of its argument table (u32), the kernel name (u32 length, bytes),
then metadata this walk does not need, then the files. A file is two length-prefixed strings
(u32 length, bytes): a name such as ``/program.bc`` and its content.
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
# struct size, files size, argument table size, kernel name length.
_KERNEL_HEAD = struct.Struct("<QQII")


class _Malformed(Exception):
    pass


def is_pocl_binary(binary: bytes) -> bool:
    return binary.startswith(MAGIC)


def pocl_binary_problem(binary: bytes) -> str | None:
    """What is wrong with a PoCL binary's structure, or None when PoCL may read it."""
    try:
        _walk(binary)
    except _Malformed as problem:
        return str(problem)
    return None


def _walk(binary: bytes) -> None:
    if len(binary) < _HEADER.size + _BUILD_HASH_BYTES:
        raise _Malformed(f"{len(binary)} bytes is shorter than a PoCL binary's header")
    magic, _device, version, kernels, flags, root_entries = _HEADER.unpack_from(binary, 0)
    if magic != MAGIC:
        raise _Malformed("not a PoCL binary")
    if version not in SUPPORTED_VERSIONS:
        raise _Malformed(f"PoCL binary format version {version}, not one of {list(SUPPORTED_VERSIONS)}")
    position = _HEADER.size
    if binary[position + _BUILD_HASH_BYTES - 1] != 0:
        raise _Malformed("its build hash is not terminated")
    position += _BUILD_HASH_BYTES
    if flags & _FLAG_PROGRAM_SCOPE_VARIABLES:
        position += _U64.size
    for index in range(root_entries):
        what = f"root entry {index}"
        size = _read(binary, _U64, position, len(binary), what)
        start = position + _U64.size
        _walk_files(binary, start, _end_within(start, size, len(binary), what), what)
        position = start + size
    for index in range(kernels):
        what = f"kernel record {index}"
        if position + _KERNEL_HEAD.size > len(binary):
            raise _Malformed(f"{what} runs past the end")
        size, files_size, _arguments, name_length = _KERNEL_HEAD.unpack_from(binary, position)
        end = _end_within(position, size, len(binary), what)
        fixed = _KERNEL_HEAD.size + name_length
        if name_length == 0 or fixed > size or files_size > size - fixed:
            raise _Malformed(f"{what} has a bad name length {name_length} or files size {files_size}")
        _walk_files(binary, end - files_size, end, what)
        position = end
    if position != len(binary):
        raise _Malformed(f"{len(binary) - position} bytes follow its last record")


def _walk_files(binary: bytes, position: int, end: int, what: str) -> None:
    """The files from ``position`` fill exactly up to ``end``, each with a safe name and content."""
    while position < end:
        name_length = _read(binary, _U32, position, end, what)
        name_end = _end_within(position + _U32.size, name_length, end, what)
        name = binary[position + _U32.size : name_end]
        if not _is_cache_relative(name):
            raise _Malformed(f"{what} holds a file named {name[:64]!r}, outside PoCL's cache folder")
        content_length = _read(binary, _U32, name_end, end, what)
        if content_length == 0:
            raise _Malformed(f"{what} holds an empty file")
        position = _end_within(name_end + _U32.size, content_length, end, what)


def _is_cache_relative(name: bytes) -> bool:
    # PoCL joins the name to its cache folder as written: "/program.bc", "/kernel/0-0-0/kernel.so".
    parts = name.split(b"/")
    return (
        name.startswith(b"/")
        and b"\0" not in name
        and all(part not in (b"", b".", b"..") for part in parts[1:])
    )


def _read(binary: bytes, field: struct.Struct, position: int, end: int, what: str) -> int:
    if position + field.size > end:
        raise _Malformed(f"{what} runs past its end")
    return field.unpack_from(binary, position)[0]


def _end_within(start: int, length: int, end: int, what: str) -> int:
    if length == 0 or start + length > end:
        raise _Malformed(f"{what} has a bad length {length}")
    return start + length
