"""opencl_device_info reports the device pyopencl sees, with every identity field filled in."""

import json
import subprocess
import sys
from pathlib import Path

import pyopencl as cl
import pytest

TOOL = Path(__file__).resolve().parents[1] / "opencl_device_info.py"


def test_cli_prints_every_device_pyopencl_sees() -> None:
    result = subprocess.run([sys.executable, str(TOOL)], capture_output=True, text=True, check=True)
    devices = json.loads(result.stdout)
    expected_names = [d.name.strip() for p in cl.get_platforms() for d in p.get_devices()]
    assert [d["device_name"] for d in devices] == expected_names
    for device in devices:
        for field in ("platform_name", "platform_version", "device_version", "driver_version"):
            assert device[field], f"{field} is empty for {device['device_name']}"
        assert device["device_version"].startswith("OpenCL ")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
