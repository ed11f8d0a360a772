"""The container both binary files use (docs/formats.md), and bounded, atomic file I/O.

The model file (``model_file``) and the compiled-program file (``program_file``) are this
container with their own magic, version and header. Layout, all integers little-endian::

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
import os
import secrets
import stat
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

PREFIX = struct.Struct("<8sIIQ")
DIGEST_BYTES = 32
ALIGN = 64
# Refuse absurd sizes before allocating anything: a header is metadata, never megabytes
# of it, and a file is read whole.
MAX_HEADER_BYTES = 64 << 20
MAX_FILE_BYTES = 4 << 30


class FormatError(ValueError):
    """A model or compiled-program file is unreadable, corrupt or of another version."""


def canonical_json(value: object) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def aligned(size: int) -> int:
    return (size + ALIGN - 1) // ALIGN * ALIGN


def pack_container(
    magic: bytes, version: int, header: dict[str, Any], blobs: list[bytes]
) -> tuple[bytes, list[int]]:
    """Returns the file bytes and the payload offset of each blob (already put in ``header``)."""
    header_bytes = canonical_json(header)
    prefix = PREFIX.pack(magic, version, 0, len(header_bytes))
    head = prefix + header_bytes
    head += b"\0" * (aligned(len(head)) - len(head))
    payload = bytearray()
    offsets = []
    for blob in blobs:
        payload += b"\0" * (aligned(len(payload)) - len(payload))
        offsets.append(len(payload))
        payload += blob
    body = head + bytes(payload)
    return body + hashlib.sha256(body).digest(), offsets


def blob_layout(sizes: Iterable[int]) -> list[int]:
    """Payload offsets ``pack_container`` will give blobs of these sizes."""
    offsets = []
    end = 0
    for size in sizes:
        start = aligned(end)
        offsets.append(start)
        end = start + size
    return offsets


@dataclass(frozen=True)
class Container:
    version: int
    header: dict[str, Any]
    payload: memoryview
    digest: str


def unpack_container(data: bytes, magic: bytes, supported_version: int, what: str, where: str) -> Container:
    if len(data) < PREFIX.size + DIGEST_BYTES:
        raise FormatError(f"{where}: too short to be a {what} ({len(data)} bytes)")
    found_magic, version, _reserved, header_len = PREFIX.unpack_from(data, 0)
    if found_magic != magic:
        # The bytes found are not quoted: the file may be anything, e.g. a private one.
        raise FormatError(f"{where}: not a {what} (it does not start with {magic!r})")
    if version != supported_version:
        raise FormatError(
            f"{where}: {what} format version {version}, this runtime reads version "
            f"{supported_version}; rebuild the file with the matching tools"
        )
    # A view, not a slice: decoding must not hold a second copy of the file.
    body, trailer = memoryview(data)[:-DIGEST_BYTES], bytes(data[-DIGEST_BYTES:])
    if hashlib.sha256(body).digest() != trailer:
        raise FormatError(f"{where}: checksum mismatch, the {what} is corrupt or truncated")
    header_end = PREFIX.size + header_len
    if header_len > MAX_HEADER_BYTES or header_end > len(body):
        raise FormatError(f"{where}: header length {header_len} does not fit the file")
    try:
        header = json.loads(bytes(data[PREFIX.size : header_end]).decode("utf-8"))
    # ValueError besides JSONDecodeError: integers over Python's 4300-digit limit;
    # RecursionError: nesting deeper than the parser's stack allows.
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"{where}: header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FormatError(f"{where}: header is not a JSON object")
    check_unicode(header, where)
    payload_start = aligned(header_end)
    if payload_start > len(body):
        raise FormatError(f"{where}: header padding runs past the end of the file")
    return Container(version, header, body[payload_start:], trailer.hex())


def check_unicode(value: Any, where: str) -> None:
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


def json_field(mapping: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise FormatError(f"{where}: missing field {key!r}")
    value = mapping[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormatError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def check_blob_layout(entries: Iterable[Mapping[str, Any]], payload_size: int, what: str, where: str) -> None:
    """Blobs are 64-byte aligned and never overlap, as pack_container lays them out.

    Checked before anything is decoded: entries sharing one blob would each copy it, so a small
    file could make decoding take memory and time out of all proportion to its size.
    """
    spans = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise FormatError(f"{where}: a {what} entry is not an object")
        offset, nbytes = entry.get("offset"), entry.get("nbytes")
        if not (is_int(offset) and is_int(nbytes)):
            raise FormatError(f"{where}: {what} has a malformed offset or size")
        if offset < 0 or nbytes < 0 or offset + nbytes > payload_size:
            raise FormatError(
                f"{where}: {what} blob [{offset}, {offset + nbytes}) lies outside the payload "
                f"({payload_size} bytes)"
            )
        if offset % ALIGN:
            raise FormatError(f"{where}: {what} at offset {offset} is not {ALIGN}-byte aligned")
        spans.append((offset, nbytes))
    end = 0
    for offset, nbytes in sorted(spans):
        if nbytes and offset < end:
            raise FormatError(
                f"{where}: {what} blobs overlap at offset {offset}; each must have its own bytes"
            )
        end = max(end, offset + nbytes)


def check_format(header: Mapping[str, Any], expected: str, where: str) -> None:
    if header.get("format") != expected:
        raise FormatError(
            f"{where}: header field 'format' is {header.get('format')!r}, expected {expected!r}"
        )


def blob_view(payload: memoryview, offset: Any, nbytes: Any, where: str) -> memoryview:
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
