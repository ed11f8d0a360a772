"""PoCL binaries are walked before PoCL reads them: a malformed one is refused, never handed over.

The binaries are real ones, built by this machine's PoCL; the malformed ones are those with
one length edited, the kind of edit that made PoCL assert or crash inside the driver.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pyopencl as cl
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.execution.device import list_devices, shared_context
from mace_cl.execution.program_store import BinaryRefused, build_from_binary, program_binary
from mace_cl.execution.programs import build_program
from mace_cl.planning.kernel_sources import program_source
from mace_cl.planning.program_spec import ProgramSpec
from mace_cl.targets.pocl_binary import is_pocl_binary, pocl_binary_problem

SPEC = ProgramSpec("softmax")
POCL = [entry for entry in list_devices() if entry.platform_name == "Portable Computing Language"]
pytestmark = pytest.mark.skipif(not POCL, reason="needs PoCL (the toolchain root and CI have it)")


@pytest.fixture(scope="module")
def device() -> cl.Device:
    return POCL[0].device


@pytest.fixture(scope="module")
def binary(device: cl.Device) -> bytes:
    context = shared_context(device)
    return program_binary(build_program(context, program_source(SPEC.name), SPEC.options, [device]), device)


def _u32_at(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + struct.pack("<I", value) + data[offset + 4 :]


def test_a_real_binary_passes_and_builds(device: cl.Device, binary: bytes) -> None:
    assert is_pocl_binary(binary)
    assert pocl_binary_problem(binary) is None
    program = build_from_binary(shared_context(device), device, SPEC, binary)
    assert program.get_info(cl.program_info.NUM_KERNELS) >= 1


TABLE_SOURCE = """
__constant float table[4] = {1.0f, 2.0f, 4.0f, 8.0f};
__kernel void scale(__global float* x) { x[get_global_id(0)] *= table[get_global_id(0) % 4]; }
__kernel void shift(__global float* x) { x[get_global_id(0)] += table[3]; }
"""


def test_a_binary_with_a_program_scope_table_and_two_kernels_passes(device: cl.Device) -> None:
    context = shared_context(device)
    binary = program_binary(build_program(context, TABLE_SOURCE, (), [device]), device)
    assert struct.unpack_from("<I", binary, 20)[0] == 2
    assert pocl_binary_problem(binary) is None
    rebuilt = cl.Program(context, [device], [binary]).build()
    assert rebuilt.get_info(cl.program_info.NUM_KERNELS) == 2


def _root_name_length_offset(binary: bytes) -> int:
    flags = struct.unpack_from("<Q", binary, 24)[0]
    return 36 + 41 + (8 if flags & 2 else 0)


def _u64_at(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + struct.pack("<Q", value) + data[offset + 8 :]


DAMAGES = [
    "truncated",
    "trailing",
    "version",
    "hash-unterminated",
    "root-size-zero",
    "root-size-huge",
    "root-size-short",
    "root-name-zero",
    "root-name-escapes",
    "root-content-zero",
    "kernel-size-zero",
    "kernel-size-huge",
    "kernel-name-zero",
    "kernel-files-huge",
    "kernel-file-content-long",
    "kernel-file-name-absolute-escape",
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_malformed_binaries_are_refused_before_the_driver(
    device: cl.Device, binary: bytes, damage: str
) -> None:
    # Root entry: u64 size, then files (u32 name length, name, u32 content length, content).
    root = _root_name_length_offset(binary)
    root_size = struct.unpack_from("<Q", binary, root)[0]
    name_at = root + 8
    name_length = struct.unpack_from("<I", binary, name_at)[0]
    assert binary[name_at + 4 : name_at + 4 + name_length] == b"/program.bc"
    content_at = name_at + 4 + name_length
    kernel = root + 8 + root_size
    # Kernel record: u64 size, u64 files size, u32 argument table size, u32 name length, ...
    kernel_size, files_size = struct.unpack_from("<QQ", binary, kernel)
    first_file = kernel + kernel_size - files_size
    file_name_length = struct.unpack_from("<I", binary, first_file)[0]
    file_content_at = first_file + 4 + file_name_length
    file_content_length = struct.unpack_from("<I", binary, file_content_at)[0]
    escaping_name = b"/../" + binary[first_file + 8 : first_file + 4 + file_name_length]
    edited = {
        "truncated": lambda: binary[:-1],
        "trailing": lambda: binary + b"\0",
        "version": lambda: _u32_at(binary, 16, 99),
        "hash-unterminated": lambda: binary[: 36 + 40] + b"A" + binary[36 + 41 :],
        "root-size-zero": lambda: _u64_at(binary, root, 0),
        "root-size-huge": lambda: _u64_at(binary, root, 2**40),
        "root-size-short": lambda: _u64_at(binary, root, root_size - 1),
        "root-name-zero": lambda: _u32_at(binary, name_at, 0),
        "root-name-escapes": lambda: binary[: name_at + 4] + b"/../gram.bc" + binary[name_at + 15 :],
        "root-content-zero": lambda: _u32_at(binary, content_at, 0),
        "kernel-size-zero": lambda: _u64_at(binary, kernel, 0),
        "kernel-size-huge": lambda: _u64_at(binary, kernel, 2**40),
        "kernel-name-zero": lambda: _u32_at(binary, kernel + 20, 0),
        "kernel-files-huge": lambda: _u64_at(binary, kernel + 8, kernel_size),
        "kernel-file-content-long": lambda: _u32_at(binary, file_content_at, file_content_length + 1),
        "kernel-file-name-absolute-escape": lambda: (
            binary[: first_file + 4] + escaping_name + binary[first_file + 4 + file_name_length :]
        ),
    }[damage]()
    assert len(edited) != len(binary) or edited != binary
    assert pocl_binary_problem(edited) is not None
    with pytest.raises(BinaryRefused, match="malformed PoCL binary"):
        build_from_binary(shared_context(device), device, SPEC, edited)


def test_a_malformed_binary_from_the_driver_is_never_cached(
    device: cl.Device, binary: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PoCL sharing its cache with another process can return such a binary (a kernel file
    # serialised before it was written); cached, it would be refused at every later start.
    import mace_cl.execution.program_store as program_store

    source = program_source(SPEC.name)
    program = build_program(shared_context(device), source, SPEC.options, [device])
    cache = program_store.DiskProgramCache(tmp_path / "good", device)
    cache.program_built(shared_context(device), SPEC, program, source)
    cache.flush()
    assert len(list((tmp_path / "good").glob("*.bin"))) == 1
    monkeypatch.setattr(program_store, "program_binary", lambda program, device: binary[:-1])
    cache = program_store.DiskProgramCache(tmp_path / "bad", device)
    cache.program_built(shared_context(device), SPEC, program, source)
    cache.flush()
    assert list((tmp_path / "bad").glob("*.bin")) == []


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
