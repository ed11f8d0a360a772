"""mace_cl.find_manifest: every spelling of a mace_model label finds its files in a runfiles tree."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).absolute().parents[2] / "runtime"))

from mace_cl.bazel import RunfilesError, find_manifest


@pytest.fixture
def runfiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "app.runfiles"
    for repository, package in (("_main", "models/mobilenet"), ("_main", "top"), ("other_repo", "x/y")):
        folder = root / repository / package
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text("{}")
    monkeypatch.setenv("RUNFILES_DIR", str(root))
    return root


@pytest.mark.parametrize("label", ["models/mobilenet", "//models:mobilenet", "//models/mobilenet"])
def test_package_labels(runfiles: Path, label: str) -> None:
    assert find_manifest(label) == runfiles / "_main" / "models" / "mobilenet" / "manifest.json"


def test_root_package_label(runfiles: Path) -> None:
    assert find_manifest("//:top") == runfiles / "_main" / "top" / "manifest.json"


def test_other_repository(runfiles: Path) -> None:
    assert (
        find_manifest("x/y", repository="other_repo") == runfiles / "other_repo" / "x" / "y" / "manifest.json"
    )


def test_missing_target_says_what_to_do(runfiles: Path) -> None:
    with pytest.raises(RunfilesError, match="add the mace_model target to the binary's data"):
        find_manifest("//models:missing")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
