"""Which binaries of a compiled-program file a device may load: exact driver matches, and
on NVIDIA GPUs cross-compiled machine code and PTX by compute capability."""

from __future__ import annotations

from collections.abc import Iterable

from mace_cl.model.program_file import DeviceIdentity
from mace_cl.targets.nvidia import nvidia_sass_capability, nvptx_target_capability

ORIGIN_SHIPPED = "shipped"
# Shipped cross-compiled binaries for NVIDIA GPUs: machine code, or PTX the driver JIT-compiles.
ORIGIN_SHIPPED_SASS = "shipped-sass"
ORIGIN_SHIPPED_PTX = "shipped-ptx"


def select_identities(
    recorded: Iterable[DeviceIdentity], actual: DeviceIdentity, compute_capability: tuple[int, int] | None
) -> list[tuple[DeviceIdentity, str]]:
    """Which recorded identities' binaries this device may load, best first, with their origin.

    - A driver's own binaries (and any identity not recognised as cross-compiled): only on a
      device whose identity is exactly the recorded one; nothing else is tried then.
    - On an NVIDIA GPU (``compute_capability`` known), of NVIDIA's platform:
      cubins (``nvidia_sass_capability``) assembled for the GPU's major architecture and at most
      its minor version, newest first: machine code, nothing left to compile;
      then PTX (``nvptx_target_capability``) for at most its compute capability, newest first:
      the driver JIT-compiles PTX for its GPU, and PTX runs forward, never backward.

    Ties are broken by the compiler text, so the order never depends on the file's order. The
    runtime asks each in turn per program, so a cubin the driver refuses falls back to PTX.
    """
    recorded = list(recorded)
    if actual in recorded:
        return [(actual, ORIGIN_SHIPPED)]
    if compute_capability is None:
        return []
    sass, ptx = [], []
    for identity in recorded:
        if identity.platform_name != actual.platform_name:
            continue
        target = nvidia_sass_capability(identity)
        if target is not None and target[0] == compute_capability[0] and target[1] <= compute_capability[1]:
            sass.append((target, identity.compiler, identity))
        target = nvptx_target_capability(identity)
        if target is not None and target <= compute_capability:
            ptx.append((target, identity.compiler, identity))
    ordered = [(entry[2], ORIGIN_SHIPPED_SASS) for entry in sorted(sass, key=lambda e: e[:2], reverse=True)]
    ordered += [(entry[2], ORIGIN_SHIPPED_PTX) for entry in sorted(ptx, key=lambda e: e[:2], reverse=True)]
    return ordered
