"""Prints the identity of the OpenCL devices this machine exposes, as JSON.

The identity (platform and device names and versions, driver version) is what a compiled
OpenCL program binary is valid for; the precompile step records it and the runtime checks it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

import pyopencl as cl


@dataclass(frozen=True)
class DeviceIdentity:
    platform_name: str
    platform_vendor: str
    platform_version: str
    device_name: str
    device_vendor: str
    device_version: str
    driver_version: str
    device_type: str


def _device_type_name(device_type: int) -> str:
    names = [
        name
        for name, flag in (
            ("gpu", cl.device_type.GPU),
            ("cpu", cl.device_type.CPU),
            ("accelerator", cl.device_type.ACCELERATOR),
        )
        if device_type & flag
    ]
    return ",".join(names) or "other"


def list_device_identities() -> list[DeviceIdentity]:
    """Every device of every OpenCL platform, in the ICD loader's order."""
    identities = []
    for platform in cl.get_platforms():
        for device in platform.get_devices():
            identities.append(
                DeviceIdentity(
                    platform_name=platform.name.strip(),
                    platform_vendor=platform.vendor.strip(),
                    platform_version=platform.version.strip(),
                    device_name=device.name.strip(),
                    device_vendor=device.vendor.strip(),
                    device_version=device.version.strip(),
                    driver_version=device.driver_version.strip(),
                    device_type=_device_type_name(device.type),
                )
            )
    return identities


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    try:
        identities = list_device_identities()
    except cl.Error as error:
        print(
            f"no OpenCL platform could be opened: {error}. Is an ICD (e.g. PoCL) installed?", file=sys.stderr
        )
        return 1
    if not identities:
        print("no OpenCL device found: install an OpenCL driver (e.g. PoCL for the CPU)", file=sys.stderr)
        return 1
    json.dump([asdict(identity) for identity in identities], sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
