"""Lists this machine's OpenCL devices with the identity their program binaries are valid for.

Run by the @rules_mace_opencl repository rule; prints JSON: [{"selector", "kind", "identity"}].
"""

from __future__ import annotations

import json
import sys

from mace.device import list_devices
from mace.program_store import device_identity


def main() -> int:
    try:
        entries = list_devices()
    except Exception as exc:  # any failure means "no usable OpenCL here": report, don't crash the build
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 0
    devices = [
        {
            "selector": f"{entry.platform_index}:{entry.device_index}",
            "kind": entry.kind,
            "identity": device_identity(entry.device).to_json(),
        }
        for entry in entries
    ]
    json.dump(devices, sys.stdout, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
