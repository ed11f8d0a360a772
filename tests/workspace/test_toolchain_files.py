"""The toolchain root's recorded files agree with each other and with the workspace.

tools/bazel keys the root by packages.txt + packages.lock and runs the Bazel that the lock
records; if these drift apart, CI and developers silently test different things.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = ROOT / "tools" / "toolchain"


def _wanted_packages() -> list[str]:
    lines = (TOOLCHAIN / "packages.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def _locked_versions() -> dict[str, str]:
    locked = {}
    for line in (TOOLCHAIN / "packages.lock").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, sep, version = line.partition("=")
        assert sep and name and version, f"packages.lock line is not NAME=VERSION: {line!r}"
        locked[name] = version
    return locked


def test_every_wanted_package_is_locked() -> None:
    missing = sorted(set(_wanted_packages()) - set(_locked_versions()))
    assert not missing, f"packages.txt names {missing} but packages.lock lacks them: run 'tools/bazel toolchain lock'"


def test_lock_is_sorted_and_unique() -> None:
    names = [
        line.partition("=")[0]
        for line in (TOOLCHAIN / "packages.lock").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert names == sorted(names), "packages.lock must be sorted (tools/bazel toolchain lock sorts it)"
    assert len(names) == len(set(names))


def test_bazelversion_matches_locked_bazel() -> None:
    wanted = (ROOT / ".bazelversion").read_text().strip()
    locked = _locked_versions()["bazel-bootstrap"]
    match = re.match(r"(\d+\.\d+\.\d+)", locked)
    assert match, f"cannot read a version from bazel-bootstrap={locked}"
    assert match.group(1) == wanted, f".bazelversion says {wanted} but the toolchain root has Bazel {locked}"


def test_offline_stub_modules_exist() -> None:
    rc = (TOOLCHAIN / "offline.bazelrc").read_text()
    stubs = re.findall(r"--override_module=(\w+)=%rules_mace%/(\S+)", rc)
    assert stubs, "offline.bazelrc names no stand-in modules"
    for name, path in stubs:
        module = (ROOT / path / "MODULE.bazel").read_text()
        assert f'name = "{name}"' in module, f"{path}/MODULE.bazel does not declare module {name}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
