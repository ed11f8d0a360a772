"""OpenCL device selection and one shared context per device.

Selectors: ``"cpu"``, ``"gpu"``, ``"any"`` (a GPU if there is one, else the first
device), or ``"<platform>:<device>"`` where each side is an index or a case-insensitive
substring of the name, and may be empty for "first": ``"0:1"``, ``"nvidia:"``,
``"portable:cpu"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyopencl as cl

from mace_cl.model.program_file import DeviceIdentity
from mace_cl.targets.nvidia import tf32_mma_capable


class DeviceSelectionError(ValueError):
    """No OpenCL device matches the selector."""


@dataclass(frozen=True)
class DeviceEntry:
    platform_index: int
    device_index: int
    platform_name: str
    device_name: str
    kind: str  # "gpu", "cpu", "accelerator" or "other"
    device: cl.Device

    def describe(self) -> str:
        return f"[{self.platform_index}:{self.device_index}] {self.platform_name} / {self.device_name} ({self.kind})"


def list_devices() -> list[DeviceEntry]:
    try:
        platforms = cl.get_platforms()
    except cl.Error:  # the ICD loader reports "no platforms" as an error
        platforms = []
    entries = []
    for p_index, platform in enumerate(platforms):
        try:
            devices = platform.get_devices()
        except cl.Error:
            devices = []
        for d_index, device in enumerate(devices):
            entries.append(
                DeviceEntry(
                    p_index,
                    d_index,
                    platform.name.strip(),
                    device.name.strip(),
                    _kind(device),
                    device,
                )
            )
    return entries


def device_kind(device: cl.Device) -> str:
    """ "gpu", "cpu", "accelerator" or "other" (the keys of KernelLaunch.tuned_local_sizes)."""
    return _kind(device)


def has_device_fence(device: cl.Device) -> bool:
    """PlanContext.device_fence for ``device``: a CPU (coherent memory) or NVIDIA's OpenCL
    (kernels/common.h's DEVICE_FENCE is membar.gl there)."""
    return bool(device.type & cl.device_type.CPU) or "NVIDIA" in device.platform.name


def has_tf32_mma(device: cl.Device) -> bool:
    """Whether ``device`` runs kernels/conv2d_gpu.cl's -DMMA_TF32 (PlanContext.tf32_mma):
    NVIDIA's OpenCL on a GPU whose compute capability takes PTX's mma.sync with TF32."""
    if "NVIDIA" not in device.platform.name:
        return False
    capability = nvidia_compute_capability(device)
    return capability is not None and tf32_mma_capable(capability)


def _kind(device: cl.Device) -> str:
    if device.type & cl.device_type.GPU:
        return "gpu"
    if device.type & cl.device_type.CPU:
        return "cpu"
    if device.type & cl.device_type.ACCELERATOR:
        return "accelerator"
    return "other"


def _matches(part: str, index: int, name: str) -> bool:
    if not part:
        return True
    if part.isdigit():
        return int(part) == index
    return part.lower() in name.lower()


def select_device(selector: str, entries: list[DeviceEntry] | None = None) -> cl.Device:
    entries = list_devices() if entries is None else entries
    if not entries:
        raise DeviceSelectionError(
            "no OpenCL devices found: install an OpenCL driver (ICD) for your GPU, or PoCL to run on the CPU"
        )
    wanted = selector.strip().lower()
    if wanted in ("cpu", "gpu"):
        matches = [e for e in entries if e.kind == wanted]
    elif wanted == "any":
        matches = sorted(entries, key=lambda e: e.kind != "gpu")  # stable: GPUs first
    elif ":" in wanted:
        platform_part, device_part = (part.strip() for part in wanted.split(":", 1))
        matches = [
            e
            for e in entries
            if _matches(platform_part, e.platform_index, e.platform_name)
            and _matches(device_part, e.device_index, e.device_name)
        ]
    else:
        raise DeviceSelectionError(
            f"device selector {selector!r} is not understood; use 'cpu', 'gpu', 'any' or "
            "'<platform>:<device>' (index or name substring). Available devices:\n" + _listing(entries)
        )
    if not matches:
        raise DeviceSelectionError(
            f"no OpenCL device matches {selector!r}. Available devices:\n" + _listing(entries)
        )
    return matches[0].device


def _listing(entries: list[DeviceEntry]) -> str:
    return "\n".join("  " + e.describe() for e in entries)


_CONTEXTS: dict[int, cl.Context] = {}


def shared_context(device: cl.Device) -> cl.Context:
    """One context per device for the whole process, so built programs are shared."""
    context = _CONTEXTS.get(device.int_ptr)
    if context is None:
        context = cl.Context([device])
        _CONTEXTS[device.int_ptr] = context
    return context


def device_identity(device: cl.Device) -> DeviceIdentity:
    """The identity binaries built by this device's own driver are valid for."""
    platform = device.platform
    return DeviceIdentity(
        platform_name=platform.name.strip(),
        platform_version=platform.version.strip(),
        device_name=device.name.strip(),
        device_version=device.version.strip(),
        driver_version=device.driver_version.strip(),
    )


# NVIDIA's vendor extension that reports a GPU's compute capability (CL_DEVICE_COMPUTE_
# CAPABILITY_MAJOR_NV = 0x4000, _MINOR_NV = 0x4001, pyopencl's device_info members of those
# names); other drivers reject those queries.
NV_DEVICE_ATTRIBUTE_QUERY = "cl_nv_device_attribute_query"
_CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV = cl.device_info.COMPUTE_CAPABILITY_MAJOR_NV
_CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV = cl.device_info.COMPUTE_CAPABILITY_MINOR_NV


def nvidia_compute_capability(device: cl.Device) -> tuple[int, int] | None:
    """(major, minor) of an NVIDIA GPU; None for any device that does not report one."""
    try:
        if NV_DEVICE_ATTRIBUTE_QUERY not in device.extensions.split():
            return None
        major = device.get_info(_CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV)
        minor = device.get_info(_CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV)
    except (cl.Error, ValueError, TypeError):
        return None
    if not (isinstance(major, int) and isinstance(minor, int)):
        return None
    return int(major), int(minor)
