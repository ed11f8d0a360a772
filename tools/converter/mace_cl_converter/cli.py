"""mace_convert: convert an ONNX model into a rules_mace model file (.mace).

Example:
    mace-convert model.onnx -o model.mace --input-shape input=1,3,224,224
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from mace_cl.model.container import FormatError, read_regular_file
from mace_cl.model.model_file import write_model

from mace_cl_converter import ConversionError, convert_model
from mace_cl_converter.input_shapes import parse_input_shapes
from mace_cl_converter.loading import MAX_ONNX_BYTES
from mace_cl_converter.model import DEFAULT_MAX_CONSTANT_BYTES
from mace_cl_converter.precision import DATA_TYPES, DEFAULT_DATA_TYPE
from mace_cl_converter.supported_ops import describe


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mace_convert",
        description="Convert an ONNX model (opset 7 and newer) into a rules_mace model file.",
    )
    parser.add_argument("model", nargs="?", type=Path, help="the ONNX model file")
    parser.add_argument("-o", "--output", type=Path, help="the model file to write (.mace)")
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=D0,D1,...",
        help="fix the shape of input NAME (repeat per input); needed for dynamic dims",
    )
    parser.add_argument(
        "--expect-sha256",
        metavar="HEX",
        help="refuse the model unless its SHA-256 is HEX (pins a downloaded model)",
    )
    parser.add_argument("--name", help="model name stored in the file (default: the ONNX file's stem)")
    parser.add_argument(
        "--model-data",
        action="append",
        type=Path,
        metavar="FILE",
        help="an external data file of the model (repeat per file); when given, external "
        "data is read from these files only (builds declare them)",
    )
    parser.add_argument(
        "--data-type",
        choices=list(DATA_TYPES),
        default=DEFAULT_DATA_TYPE,
        help="fp32 (default); fp16_fp32: weights in half precision (about half the file) and, on the "
        "device, half storage for every tensor with float32 arithmetic, refusing a weight beyond 65504 "
        "or one half turns to all zeros; fp32_tf32: float32 storage, convolutions on TF32 tensor cores "
        "where the GPU has them (NVIDIA, compute capability 8.0 and later)",
    )
    parser.add_argument("--list-ops", action="store_true", help="print the supported ONNX ops and exit")
    parser.add_argument(
        "--max-constant-bytes",
        type=int,
        default=DEFAULT_MAX_CONSTANT_BYTES,
        metavar="N",
        help="refuse to fold any constant larger than N bytes, before allocating it "
        f"(default {DEFAULT_MAX_CONSTANT_BYTES}: 1 GiB)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_ops:
        print(describe())
        return 0
    if args.model is None or args.output is None:
        parser.error("MODEL and -o OUTPUT are required")
    if args.expect_sha256:
        try:
            actual = hashlib.sha256(read_regular_file(args.model, "ONNX model", MAX_ONNX_BYTES)).hexdigest()
        except FormatError as exc:
            print(f"mace_convert: error: {exc}", file=sys.stderr)
            return 2
        if actual != args.expect_sha256.lower():
            print(
                f"mace_convert: error: {args.model} has SHA-256 {actual}, but {args.expect_sha256} is "
                "expected; the model file changed (update the pinned checksum only if the change is intended)",
                file=sys.stderr,
            )
            return 2
    try:
        shapes = parse_input_shapes(args.input_shape)
        graph = convert_model(
            args.model,
            shapes,
            max_constant_bytes=args.max_constant_bytes,
            data_files=args.model_data,
            data_type=args.data_type,
        )
        name = args.name or args.model.stem
        # write_model writes a temporary file and renames it: no half-written output.
        digest = write_model(graph, args.output, {"name": name, "source": args.model.name})
    except (ConversionError, FormatError) as exc:
        print(f"mace_convert: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mace_convert: error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {len(graph.nodes)} nodes, {len(graph.constants)} constants, digest {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
