"""Locate ONNX's on-disk test data (light/ zoo graphs, pytorch-converted, pytorch-operator).

Debian's python3-onnx ships none of it, so it comes from the onnx *wheel* (1.13..1.22
carry ``onnx/backend/test/data``). Looked up in order:
1. ``$MACE_ONNX_TEST_DATA`` (a folder holding ``light/`` etc.),
2. the installed onnx package's own data folder,
3. ``$XDG_CACHE_HOME/rules_mace/onnx-test-data`` (default ``~/.cache``), filled by
   ``python3 tests/onnx_test_data.py --fetch`` (pip downloads the wheel; nothing is
   committed to this repository).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pins

# The onnx wheel Bazel takes the data from too (rules/private/versions.bzl, DEV_WHEELS).
PIN = "onnx_wheel_testdata"
KINDS = ("light", "pytorch-converted", "pytorch-operator")


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "rules_mace" / "onnx-test-data"


def candidates() -> list[Path]:
    found = []
    if os.environ.get("MACE_ONNX_TEST_DATA"):
        given = Path(os.environ["MACE_ONNX_TEST_DATA"])
        # Bazel can only name files ($(rootpath)), so a file inside <data>/light/ also works.
        found.append(given.parent.parent if given.is_file() else given)
    try:
        import onnx

        found.append(Path(onnx.__file__).parent / "backend" / "test" / "data")
    except ImportError:
        pass
    found.append(cache_dir())
    return found


def data_dir(kind: str) -> Path | None:
    """The folder of ``kind`` test data, or None when no copy is present."""
    for root in candidates():
        if (root / kind).is_dir():
            return root / kind
    return None


def fetch(target: Path | None = None) -> Path:
    """Download the onnx wheel with pip and extract its test data into ``target``."""
    target = target or cache_dir()
    pin = pins.dev_wheel(PIN)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                pin["wheel_python_version"],
                "--platform",
                pin["wheel_platform"],
                "-d",
                tmp,
                pins.requirement(PIN),
            ],
            check=True,
        )
        wheel = next(Path(tmp).glob("onnx-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                parts = member.split("/")
                if len(parts) > 5 and parts[:4] == ["onnx", "backend", "test", "data"] and parts[4] in KINDS:
                    destination = target.joinpath(*parts[4:])
                    if member.endswith("/"):
                        continue
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    destination.write_bytes(archive.read(member))
    return target


if __name__ == "__main__":
    if "--fetch" in sys.argv:
        print(fetch())
    else:
        for kind in KINDS:
            print(kind, data_dir(kind))
