"""NVIDIA targets: identities of cross-compiled PTX and of ptxas machine code, and which
GPUs each runs on (docs/formats.md)."""

from __future__ import annotations

import re

from mace_cl.model.program_file import DeviceIdentity

# The platform name is the one NVIDIA's
# OpenCL reports; the compiler field reads "clang-<version> nvptx64 sm_<XY> libclc-<major>".
NVIDIA_PLATFORM_NAME = "NVIDIA CUDA"
NVPTX_COMPILER_TARGET = "nvptx64"
# sm_<major><minor>: the last digit is the minor version (sm_86 is 8.6, sm_100 is 10.0).
# Arch-specific variants (sm_90a) are left out on purpose: their PTX runs on that one
# architecture only, while the runtime accepts plain PTX on every later GPU.
_NVPTX_ARCH = re.compile(r"sm_([1-9][0-9]*)([0-9])")
# PTX's mma.sync with .tf32 operands (kernels/conv2d_gpu.cl -DMMA_TF32) needs PTX ISA 7.0
# and compute capability 8.0 (Ampere) or later.
TF32_MMA_MIN_CAPABILITY = (8, 0)


def parse_nvptx_arch(arch: str) -> tuple[int, int] | None:
    """The compute capability of an NVIDIA architecture name ("sm_90" -> (9, 0)), None if not one."""
    found = _NVPTX_ARCH.fullmatch(arch)
    return None if found is None else (int(found.group(1)), int(found.group(2)))


def tf32_mma_capable(capability: tuple[int, int]) -> bool:
    """Whether a GPU of this compute capability runs -DMMA_TF32 (PlanContext.tf32_mma)."""
    return capability >= TF32_MMA_MIN_CAPABILITY


def nvptx_identity(arch: str, clang_version: str, libclc: str) -> DeviceIdentity:
    """The identity PTX cross-compiled for ``arch`` is recorded under.

    Only the platform name and the architecture describe the target; the version and driver
    fields stay empty because no one device or driver built it.
    """
    return _target_identity(arch, f"clang-{clang_version} {NVPTX_COMPILER_TARGET} {arch} {libclc}")


def _target_identity(arch: str, compiler: str) -> DeviceIdentity:
    """An identity for an NVIDIA architecture rather than one device: only the platform name,
    the architecture and the compiler are filled; no one device or driver built it."""
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
        compiler=compiler,
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
    return _target_identity(arch, f"{ptx.compiler} ptxas-{ptxas_version} {NVIDIA_SASS} {arch}")


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
