"""Lists this machine's OpenCL devices with the identity their program binaries are valid for.

Run by the @rules_mace_opencl repository rule with rules_mace's pinned packages on PYTHONPATH;
prints JSON: {"devices": [{"selector", "kind", "identity"}], "probed": "..."} and never a
traceback: whatever goes wrong is "no device", explained in "probed".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Where the ICD loader (the one inside the pyopencl wheel, like any other) looks for drivers.
_DEFAULT_VENDORS = "/etc/OpenCL/vendors"


def _drivers() -> str:
    """What the ICD loader will try: the driver libraries named by the .icd files."""
    if os.environ.get("OCL_ICD_FILENAMES"):
        return f"OCL_ICD_FILENAMES={os.environ['OCL_ICD_FILENAMES']}"
    folder = Path(os.environ.get("OCL_ICD_VENDORS") or _DEFAULT_VENDORS)
    icds = sorted(folder.glob("*.icd")) if folder.is_dir() else []
    if not icds:
        return f"no driver registered ({folder} has no .icd file)"
    named = []
    for icd in icds:
        try:
            named.append(f"{icd.name} -> {icd.read_text().strip()}")
        except OSError as exc:
            named.append(f"{icd.name} (unreadable: {exc.strerror})")
    return f"{folder}: " + ", ".join(named)


def probe() -> dict:
    drivers = _drivers()
    try:
        from mace_cl.execution.device import device_identity, list_devices

        entries = list_devices()
        devices = [
            {
                "selector": f"{entry.platform_index}:{entry.device_index}",
                "kind": entry.kind,
                "identity": device_identity(entry.device).to_json(),
            }
            for entry in entries
        ]
    except Exception as exc:  # a broken driver or loader means "no usable device": explain, don't crash
        return {"devices": [], "probed": f"{drivers}; the probe failed: {type(exc).__name__}: {exc}"}
    found = (
        ", ".join(f"{d['identity'].get('device_name', '?')} ({d['kind']})" for d in devices) or "no device"
    )
    return {"devices": devices, "probed": f"{drivers}; found {found}"}


def main() -> int:
    print(json.dumps(probe(), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
