"""mypy over the runtime and the tools, with the locked mypy and libraries.

Run: tools/bazel test //tests/typecheck:mypy_test --test_output=errors

What is checked and how is mypy.ini's (its `files`); those files are this test's data.
mypy runs in-process, so it finds the libraries (numpy, onnx, protobuf, pyopencl) on this
test's sys.path, where the checked code would import them from.
"""

from __future__ import annotations

import configparser
import os
import sys
import tempfile
from pathlib import Path

from mypy import api


def _root() -> Path:
    """The repository as this test sees it: its runfiles under Bazel, else the checkout."""
    if "TEST_SRCDIR" in os.environ:
        return Path(os.environ["TEST_SRCDIR"]) / os.environ.get("TEST_WORKSPACE", "_main")
    return Path(__file__).resolve().parents[2]


def _checked_files(config: Path) -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(config)
    return [item.strip() for item in parser.get("mypy", "files").split(",") if item.strip()]


def main() -> int:
    root = _root()
    config = root / "mypy.ini"
    if not config.is_file():
        print("mypy_test: mypy.ini is not among the test's data", file=sys.stderr)
        return 1
    # A path missing from the data would otherwise be an error about that path alone.
    missing = [path for path in _checked_files(config) if not (root / path).exists()]
    if missing:
        print(
            f"mypy_test: mypy.ini checks {', '.join(missing)}, which the test's data lack "
            "(tests/typecheck/BUILD.bazel)",
            file=sys.stderr,
        )
        return 1
    # mypy.ini's paths (files, mypy_path, exclude) are relative to the repository root.
    os.chdir(root)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as cache:
        stdout, stderr, status = api.run(["--config-file", "mypy.ini", "--cache-dir", cache])
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    if status != 0:
        print("mypy_test: mypy reports the errors above (settings: mypy.ini)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
