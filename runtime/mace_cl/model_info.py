"""mace-model-info: what a model file (.mace) holds and which OpenCL programs it needs.

Example:
    mace-model-info model.mace --device-kind gpu --device-fence --tf32-mma --json

Nothing here opens an OpenCL device: the program list comes from the same planner the
runtime and the precompiler use (mace_cl.planning.planner), for the device described: its
kind, whether DEVICE_FENCE is device-wide there and whether it has TF32 tensor cores
(PlanContext; an NVIDIA GPU of compute capability 8.0 or later has both).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from mace_cl.model.container import FormatError
from mace_cl.model.graph import GraphError, TensorInfo
from mace_cl.model.model_file import ModelFile, read_model
from mace_cl.planning.ops.base import OpError
from mace_cl.planning.planner import PLAN_KINDS, required_programs

PROG = "mace-model-info"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Print a model file's inputs, outputs, ops and the OpenCL programs it needs."
    )
    parser.add_argument("model", type=Path, help="a model file (.mace) from mace-convert")
    parser.add_argument(
        "--device-kind",
        choices=PLAN_KINDS,
        default="cpu",
        help="plan the programs for this kind of OpenCL device (default: cpu)",
    )
    parser.add_argument(
        "--device-fence",
        action="store_true",
        help="the device orders stores device-wide (NVIDIA's OpenCL, CPU devices): split-K in one launch",
    )
    parser.add_argument(
        "--tf32-mma",
        action="store_true",
        help="the device has TF32 tensor cores (NVIDIA, compute capability 8.0 or later); used only by "
        "models whose data type accepts TF32 products",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser.parse_args(argv)


def _tensor(info: TensorInfo) -> dict[str, Any]:
    return {"name": info.name, "shape": list(info.shape), "dtype": info.dtype}


def describe(
    model: ModelFile, device_kind: str, device_fence: bool = False, tf32_mma: bool = False
) -> dict[str, Any]:
    """The model's summary as JSON-ready data; raises GraphError or OpError if it cannot be planned."""
    graph = model.graph
    programs = required_programs(graph, device_kind=device_kind, device_fence=device_fence, tf32_mma=tf32_mma)
    return {
        "metadata": dict(sorted(model.metadata.items())),
        "digest": model.digest,
        "inputs": [_tensor(info) for info in graph.inputs],
        "outputs": [_tensor(info) for info in graph.outputs],
        "ops": dict(sorted(Counter(node.op_type for node in graph.nodes).items())),
        "constants": len(graph.constants),
        "constant_bytes": sum(int(value.nbytes) for value in graph.constants.values()),
        "device_kind": device_kind,
        "device_fence": device_fence,
        "tf32_mma": tf32_mma,
        # The items of mace-precompile --list, so either output can be compared with the other.
        "programs": [
            {"program": spec.name, "options": list(spec.options), "key": spec.key} for spec in programs
        ],
    }


def _text(path: Path, info: dict[str, Any]) -> str:
    def tensor_line(tensor: dict[str, Any]) -> str:
        return f"  {tensor['name']}: {tensor['dtype']} {tensor['shape']}"

    lines = [f"{path}: digest {info['digest'][:16]}"]
    lines += [f"  {key}: {value}" for key, value in info["metadata"].items()]
    lines.append("inputs:")
    lines += [tensor_line(tensor) for tensor in info["inputs"]]
    lines.append("outputs:")
    lines += [tensor_line(tensor) for tensor in info["outputs"]]
    lines.append(f"ops ({sum(info['ops'].values())} nodes):")
    lines += [f"  {op}: {count}" for op, count in info["ops"].items()]
    lines.append(f"constants: {info['constants']} ({info['constant_bytes']} bytes)")
    lines.append(f"OpenCL programs for a {info['device_kind']} device ({len(info['programs'])}):")
    lines += [f"  {' '.join([item['program'], *item['options']])}" for item in info["programs"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        info = describe(read_model(args.model), args.device_kind, args.device_fence, args.tf32_mma)
    except (FormatError, GraphError, OpError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(_text(args.model, info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
