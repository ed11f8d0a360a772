"""mace_manifest: write the build manifest that ties a model file to its compiled programs.

The runtime reads the manifest to find both files next to it and to refuse a file whose
digest is not the one recorded here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mace_cl.model.container import FormatError, write_atomically
from mace_cl.model.manifest import Manifest, encode_manifest
from mace_cl.model.model_file import read_model
from mace_cl.model.program_file import read_compiled_programs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mace_manifest", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the model's name (the Bazel target's name)")
    parser.add_argument("--model", required=True, type=Path, help="the model file (.mace)")
    parser.add_argument(
        "--compiled-program", type=Path, help="mace_cl_compiled_program.bin, if one was built"
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="where to write manifest.json")
    args = parser.parse_args(argv)
    try:
        model = read_model(args.model)
        programs = read_compiled_programs(args.compiled_program) if args.compiled_program else None
    except FormatError as exc:
        print(f"mace_manifest: error: {exc}", file=sys.stderr)
        return 2
    # The three files sit in one directory and the manifest names its neighbours, so they
    # can move together (runfiles, installs).
    neighbours = [args.model] + ([args.compiled_program] if args.compiled_program else [])
    for path in neighbours:
        if path.absolute().parent != args.output.absolute().parent:
            print(f"mace_manifest: error: {path} must be in the manifest's directory", file=sys.stderr)
            return 2
    manifest = Manifest(
        name=args.name,
        model=args.model.name,
        model_digest=model.digest,
        compiled_program=None if programs is None else args.compiled_program.name,
        compiled_program_digest=None if programs is None else programs.digest,
        devices=() if programs is None else tuple(sorted(i.describe() for i in programs.devices)),
        data_type=model.metadata.get("data_type", "fp32"),
    )
    try:
        write_atomically(args.output, encode_manifest(manifest))
    except OSError as exc:  # -o names a folder, or a missing or read-only one
        print(
            f"mace_manifest: error: cannot write {args.output}: {exc.strerror or exc}; "
            "give -o a file path in an existing, writable folder",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
