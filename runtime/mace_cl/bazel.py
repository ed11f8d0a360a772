"""Finding a ``mace_model`` target's files from a Bazel-built app.

A ``py_binary`` with a ``mace_model`` in its ``data`` gets the model's manifest, model file and
compiled programs in its runfiles under ``<package>/<name>/``. ``load_model_runtime`` finds
them and starts the runtime in one line::

    runtime = mace_cl.load_model_runtime("examples/mobilenet")  # package/name of the target
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mace_cl.execution.engine import MaceRuntime
from mace_cl.model.manifest import MANIFEST_FILE_NAME


class RunfilesError(FileNotFoundError):
    """The model target's files are not in this program's runfiles."""


def _runfiles_roots() -> list[Path]:
    roots = []
    if os.environ.get("RUNFILES_DIR"):
        roots.append(Path(os.environ["RUNFILES_DIR"]))
    if os.environ.get("TEST_SRCDIR"):
        roots.append(Path(os.environ["TEST_SRCDIR"]))
    roots.append(Path(sys.argv[0] + ".runfiles"))
    # Python binaries run their main file from inside the runfiles tree, and so does this
    # module: the nearest enclosing "*.runfiles" directory is the tree (paths not resolved,
    # since runfiles are symlinks into the source and output trees).
    for start in (Path(sys.argv[0]).absolute(), Path(__file__).absolute()):
        roots.extend(parent for parent in start.parents if parent.name.endswith(".runfiles"))
    return [root for root in roots if root.is_dir()]


def find_manifest(target: str, repository: str | None = None) -> Path:
    """Path of the manifest of the ``mace_model`` at ``target`` ("package/name" or "//package:name").

    ``repository``: the Bazel repository holding the target, if not the main one.
    """
    # "//pkg:name", "pkg/name" and "//:name" (root package) all name <pkg>/<name>/.
    relative = target.removeprefix("//").replace(":", "/").lstrip("/") + "/" + MANIFEST_FILE_NAME
    # The main repository's runfiles directory is "_main" under bzlmod and the workspace name
    # (e.g. "rules_mace") under WORKSPACE; external ones carry their canonical name.
    searched = []
    for root in _runfiles_roots():
        names = (
            [repository] if repository else ["_main", *sorted(p.name for p in root.iterdir() if p.is_dir())]
        )
        for name in names:
            candidate = root / name / relative
            searched.append(str(candidate))
            if candidate.is_file():
                return candidate
    raise RunfilesError(
        f"no mace_model files for {target!r} in this program's runfiles; add the mace_model target to "
        f"the binary's data (searched: {', '.join(searched) or 'no runfiles directory found'})"
    )


def load_model_runtime(
    target: str, device: str = "any", cache_dir: str | Path | None = None, repository: str | None = None
) -> MaceRuntime:
    """Starts the runtime on the model built by the ``mace_model`` target ``target``."""
    return MaceRuntime.from_manifest(find_manifest(target, repository), device=device, cache_dir=cache_dir)
