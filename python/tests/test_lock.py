"""requirements_lock.txt covers requirements.in, pins every package by hash and is self-consistent."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from update_lock import normalize

PYTHON_DIR = Path(__file__).resolve().parents[1]  # python/, which holds the two files
ENTRY = re.compile(r"^([a-z0-9_]+)==(\S+) \\$")


def _lock() -> dict[str, dict]:
    packages: dict[str, dict] = {}
    current = None
    for line in (PYTHON_DIR / "requirements_lock.txt").read_text().splitlines():
        if match := ENTRY.match(line):
            current = packages.setdefault(
                match.group(1), {"version": match.group(2), "hashes": [], "via": []}
            )
        elif current is not None and line.strip().startswith("--hash=sha256:"):
            current["hashes"].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif current is not None and line.startswith("    #   "):
            current["via"].append(line.removeprefix("    #   "))
    return packages


def _direct() -> set[str]:
    names = set()
    for line in (PYTHON_DIR / "requirements.in").read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            names.add(normalize(re.split(r"[<>=!~;\[ ]", text, maxsplit=1)[0]))
    return names


def test_every_direct_requirement_is_locked_as_direct() -> None:
    lock = _lock()
    for name in _direct():
        assert name in lock, f"{name} is in requirements.in but not in the lock: regenerate it"
        assert "-r python/requirements.in" in lock[name]["via"], name


def test_every_package_is_pinned_by_sha256() -> None:
    for name, entry in _lock().items():
        assert entry["hashes"], name
        assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in entry["hashes"]), name


def test_every_requirer_is_locked_and_every_package_is_needed() -> None:
    lock = _lock()
    for name, entry in lock.items():
        assert entry["via"], f"{name} is locked but nothing requires it"
        for who in entry["via"]:
            assert who.startswith("-r ") or who in lock, f"{name} is required by {who}, which is not locked"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
