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

from mace.device import list_devices, shared_context
from mace.kernel_sources import program_source
from mace.pocl_binary import is_pocl_binary, pocl_binary_problem
from mace.program_store import BinaryRefused, build_from_binary, program_binary
from mace.programs import ProgramSpec, build_program

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
    return data[:offset] + struct.pack("<I", value) + data[offset + 4:]


def test_a_real_binary_passes_and_builds(device: cl.Device, binary: bytes) -> None:
    assert is_pocl_binary(binary)
    assert pocl_binary_problem(binary) is None
    program = build_from_binary(shared_context(device), device, SPEC, binary)
    assert program.get_info(cl.program_info.NUM_KERNELS) >= 1


def _root_name_length_offset(binary: bytes) -> int:
    flags = struct.unpack_from("<Q", binary, 24)[0]
    return 36 + 41 + (8 if flags & 2 else 0)


@pytest.mark.parametrize("damage", ["truncated", "trailing", "version", "root-name-zero", "root-length-huge",
                                    "kernel-size-zero", "kernel-size-huge", "hash-unterminated"])
def test_malformed_binaries_are_refused_before_the_driver(device: cl.Device, binary: bytes, damage: str) -> None:
    root = _root_name_length_offset(binary)
    name_length = struct.unpack_from("<I", binary, root)[0]
    content_length = struct.unpack_from("<I", binary, root + 4 + name_length)[0]
    kernels_at = root + 8 + name_length + content_length
    edited = {
        "truncated": lambda: binary[:-1],
        "trailing": lambda: binary + b"\0",
        "version": lambda: _u32_at(binary, 16, 99),
        "root-name-zero": lambda: _u32_at(binary, root, 0),
        "root-length-huge": lambda: _u32_at(binary, root, 2**31),
        "kernel-size-zero": lambda: binary[:kernels_at] + bytes(8) + binary[kernels_at + 8:],
        "kernel-size-huge": lambda: binary[:kernels_at] + struct.pack("<Q", 2**40) + binary[kernels_at + 8:],
        "hash-unterminated": lambda: binary[:36 + 40] + b"A" + binary[36 + 41:],
    }[damage]()
    assert pocl_binary_problem(edited) is not None
    with pytest.raises(BinaryRefused, match="malformed PoCL binary"):
        build_from_binary(shared_context(device), device, SPEC, edited)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
