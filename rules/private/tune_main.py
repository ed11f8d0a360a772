"""Driver of mace_tuning targets: tune a built model on this machine's device, write the file.

Run by ``bazel run``: the output goes into the workspace (BUILD_WORKSPACE_DIRECTORY), at the
target's default path or at the path given as the first argument (relative to where
``bazel run`` was called).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mace_cl_precompiler.cli import main as precompile


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--device", default="any")
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--default-output", required=True)
    parser.add_argument("output", nargs="?", help="where to write the tuning file")
    parser.add_argument("--seconds", type=float, help="per model, start no new kernel's tuning after this")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if args.output:
        output = Path(os.environ.get("BUILD_WORKING_DIRECTORY", ".")) / args.output
    elif workspace:
        output = Path(workspace) / args.default_output
    else:
        print("mace_tuning: give the output path (run with `bazel run`, or name the file)", file=sys.stderr)
        return 2
    command = [str(args.model), "--device", args.device, "--tune-output", str(output)]
    command += ["--tune-candidates", str(args.candidates)]
    if args.seconds is not None:
        command += ["--tune-seconds", str(args.seconds)]
    return precompile(command)


if __name__ == "__main__":
    raise SystemExit(main())
