"""The pip distributions carry the Bazel module's version, and the tools pin that runtime;
MODULE.bazel's pins agree with rules/private/versions.bzl, where every pin is written.

A release bumps MODULE.bazel's version; this fails until every pyproject.toml follows.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import tomllib

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
REPO = Path(__file__).absolute().parents[2]
sys.path.append(str(REPO / "tests"))  # tests/pins.py, when run outside Bazel

import pins  # noqa: E402

PROJECTS = {
    "mace-cl": REPO / "runtime" / "pyproject.toml",
    "mace-cl-converter": REPO / "tools" / "converter" / "pyproject.toml",
    "mace-cl-precompiler": REPO / "tools" / "precompile" / "pyproject.toml",
}


def module_version() -> str:
    text = (REPO / "MODULE.bazel").read_text(encoding="utf-8")
    call = re.search(r"^module\((.*?)^\)", text, re.MULTILINE | re.DOTALL)
    assert call, "MODULE.bazel has no module(...) call"
    version = re.search(r'^\s*version\s*=\s*"([^"]+)"', call.group(1), re.MULTILINE)
    assert version, "MODULE.bazel's module(...) gives no version"
    return version.group(1)


def project(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))["project"]


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_distribution_has_the_module_version(name: str) -> None:
    meta = project(PROJECTS[name])
    assert meta["name"] == name
    assert meta["version"] == module_version(), (
        f"{PROJECTS[name].relative_to(REPO)}: bump it with MODULE.bazel"
    )


@pytest.mark.parametrize("name", ["mace-cl-converter", "mace-cl-precompiler"])
def test_tools_pin_the_runtime_of_the_same_release(name: str) -> None:
    pins = [dep for dep in project(PROJECTS[name])["dependencies"] if re.match(r"mace-cl\b(?!-)", dep)]
    assert pins == [f"mace-cl=={module_version()}"]


def bazel_deps() -> dict[str, str]:
    text = (REPO / "MODULE.bazel").read_text(encoding="utf-8")
    return dict(re.findall(r'^bazel_dep\(name = "([^"]+)", version = "([^"]+)"', text, re.MULTILINE))


def test_bazel_deps_have_the_versions_of_the_workspace_rule_sets() -> None:
    # bazel_dep() cannot read versions.bzl: the one pin written twice, so checked here.
    rule_sets = {name: pin["version"] for name, pin in pins.table("RULE_SETS").items()}
    assert bazel_deps() == rule_sets, (
        "MODULE.bazel's bazel_dep()s and RULE_SETS in rules/private/versions.bzl (WORKSPACE mode) "
        "must give the same versions: change both"
    )


@pytest.mark.parametrize("table", ["RULE_SETS", "DEV_WHEELS"])
def test_pins_are_written_in_versions_bzl_only(table: str) -> None:
    # MODULE.bazel and repositories.bzl name repositories; their hashes come from versions.bzl.
    for path in (REPO / "MODULE.bazel", REPO / "rules" / "repositories.bzl"):
        text = path.read_text(encoding="utf-8")
        for name, pin in pins.table(table).items():
            assert pin["sha256"] not in text, f"{path.relative_to(REPO)} repeats the pin of {name}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
