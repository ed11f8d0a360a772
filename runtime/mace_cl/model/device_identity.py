"""What a program binary, or a tuned local size, is valid for: one OpenCL device and driver
(or, for cross-compiled binaries, a target)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mace_cl.model.container import json_field


@dataclass(frozen=True)
class DeviceIdentity:
    """What a program binary is valid for.

    Binaries a device's own driver built (``compiler == "driver"``) are used only on an exact
    match. Cross-compiled binaries describe a target instead of one device: see
    ``mace_cl.targets.nvidia`` (PTX and machine code for NVIDIA GPUs).
    """

    platform_name: str
    platform_version: str
    device_name: str
    device_version: str
    driver_version: str
    # Who produced the binaries: "driver" when the device's own OpenCL compiler built them,
    # otherwise the offline compiler and its version (cross-compiled binaries).
    compiler: str = "driver"

    def to_json(self) -> dict[str, str]:
        return {
            "platform_name": self.platform_name,
            "platform_version": self.platform_version,
            "device_name": self.device_name,
            "device_version": self.device_version,
            "driver_version": self.driver_version,
            "compiler": self.compiler,
        }

    @staticmethod
    def from_json(item: Any, where: str) -> DeviceIdentity:
        return DeviceIdentity(
            **{
                key: json_field(item, key, str, where)
                for key in (
                    "platform_name",
                    "platform_version",
                    "device_name",
                    "device_version",
                    "driver_version",
                    "compiler",
                )
            }
        )

    def describe(self) -> str:
        if self.compiler != "driver" and not self.driver_version:  # a cross-compile target
            return f"{self.platform_name} {self.device_name} (compiler {self.compiler})"
        return f"{self.device_name} ({self.platform_name}, {self.driver_version}, compiler {self.compiler})"
