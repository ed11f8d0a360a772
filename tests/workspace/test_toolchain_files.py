"""The toolchain root's recorded files agree with each other and with the workspace.

tools/bazel keys the root by packages.txt + packages.lock and runs the Bazel that the lock
records; if these drift apart, CI and developers silently test different things.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = ROOT / "tools" / "toolchain"
# Each root's package list, its lock beside it: the toolchain root and the bare root of CI.
ROOTS = [TOOLCHAIN, TOOLCHAIN / "bare"]


def _wanted_packages(root: Path) -> list[str]:
    lines = (root / "packages.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def _locked_versions(root: Path = TOOLCHAIN) -> dict[str, str]:
    locked = {}
    for line in (root / "packages.lock").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, sep, version = line.partition("=")
        assert sep and name and version, f"packages.lock line is not NAME=VERSION: {line!r}"
        locked[name] = version
    return locked


@pytest.mark.parametrize("root", ROOTS, ids=lambda root: root.name)
def test_every_wanted_package_is_locked(root: Path) -> None:
    missing = sorted(set(_wanted_packages(root)) - set(_locked_versions(root)))
    assert not missing, (
        f"packages.txt names {missing} but packages.lock lacks them: run 'tools/bazel toolchain lock'"
    )


@pytest.mark.parametrize("root", ROOTS, ids=lambda root: root.name)
def test_lock_is_sorted_and_unique(root: Path) -> None:
    names = [
        line.partition("=")[0]
        for line in (root / "packages.lock").read_text().splitlines()
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


def test_both_roots_have_the_same_pocl_and_python() -> None:
    # CI compares the bytes the two roots build; they can only agree on the same compiler stack.
    full, bare = _locked_versions(TOOLCHAIN), _locked_versions(TOOLCHAIN / "bare")
    for package in ["bazel-bootstrap", "pocl-opencl-icd", "libpocl2t64", "python3"]:
        assert full[package] == bare[package], (
            f"{package}: {full[package]} vs {bare[package]} in the bare root"
        )


def test_offline_stub_modules_exist() -> None:
    rc = (TOOLCHAIN / "offline.bazelrc").read_text()
    stubs = re.findall(r"--override_module=(\w+)=%rules_mace%/(\S+)", rc)
    assert stubs, "offline.bazelrc names no stand-in modules"
    for name, path in stubs:
        module = (ROOT / path / "MODULE.bazel").read_text()
        assert f'name = "{name}"' in module, f"{path}/MODULE.bazel does not declare module {name}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
