"""Assembles PTX into NVIDIA machine code (a cubin) with ptxas, on a machine without a GPU.

NVIDIA's OpenCL takes a cubin in clCreateProgramWithBinary as it takes PTX, but runs it as it
is, where PTX is first JIT-compiled by the driver at every cold start. A cubin runs only on
GPUs of its major architecture (sm_80 code on 8.0, 8.6, 8.9), so it ships beside the PTX.
ptxas comes from NVIDIA's `nvidia-cuda-nvcc` wheel, pinned by hash like every other tool.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from mace_cl.targets.nvidia import parse_nvptx_arch

from mace_cl_precompiler.common import PrecompileError
from mace_cl_precompiler.cross import WorkDir, run_tool

_VERSION = re.compile(r"\bV(\d+\.\d+\.\d+)\b")

# A cubin is a 64-bit little-endian ELF file for machine EM_CUDA. Where e_flags keep the SM
# version depends on the CUDA ELF ABI version (e_ident[8]): 7, older ptxas, bits 0-7; 8, newer
# ptxas (all architectures from CUDA 13, Blackwell from 12.8), bits 8-15.
_ELF_MAGIC = b"\x7fELF"
_ELFCLASS64 = 2
_ELFDATA2LSB = 1
_EM_CUDA = 190
_E_MACHINE = struct.Struct("<H")
_E_FLAGS = struct.Struct("<I")
_SM_SHIFT_BY_ABI_VERSION = {7: 0, 8: 8}


@dataclass(frozen=True)
class Ptxas:
    path: str
    version: str  # "13.5.37"


def find_ptxas(path: str | Path) -> Ptxas:
    """ptxas at ``path`` and its version; PrecompileError when it is missing or not ptxas."""
    path = Path(path)
    if not path.is_file():
        raise PrecompileError(f"ptxas not found at {path}")
    output = run_tool([str(path.absolute()), "--version"], Path.cwd()).decode("utf-8", "replace")
    found = _VERSION.search(output)
    if found is None:
        raise PrecompileError(f"{path} does not report a ptxas version: {output.strip()[:200]!r}")
    return Ptxas(str(path.absolute()), found.group(1))


def cubin_sm(binary: bytes) -> int | None:
    """The SM version a cubin was assembled for (90 for sm_90), None if it is not a cubin."""
    if len(binary) < 64 or not binary.startswith(_ELF_MAGIC):
        return None
    if binary[4] != _ELFCLASS64 or binary[5] != _ELFDATA2LSB:
        return None
    if _E_MACHINE.unpack_from(binary, 18)[0] != _EM_CUDA:
        return None
    shift = _SM_SHIFT_BY_ABI_VERSION.get(binary[8])
    if shift is None:
        return None
    return (_E_FLAGS.unpack_from(binary, 48)[0] >> shift) & 0xFF


def assemble(ptxas: Ptxas, ptx: bytes, arch: str, where: str) -> bytes:
    """The cubin of one program's PTX (as shipped: NUL-terminated) for ``arch``, checked."""
    capability = parse_nvptx_arch(arch)
    if capability is None:
        raise PrecompileError(f"{where}: not an NVIDIA architecture for ptxas: {arch!r}")
    with WorkDir() as work:
        # The shipped PTX ends in the NUL byte NVIDIA's OpenCL wants; ptxas reads it as garbage.
        (work / "program.ptx").write_bytes(ptx.rstrip(b"\0"))
        run_tool([ptxas.path, f"-arch={arch}", "-O3", "program.ptx", "-o", "program.cubin"], work)
        cubin = (work / "program.cubin").read_bytes()
    sm = cubin_sm(cubin)
    if sm != capability[0] * 10 + capability[1]:
        raise PrecompileError(f"{where}: ptxas {ptxas.version} wrote no cubin for {arch} (ELF reads sm {sm})")
    return cubin
