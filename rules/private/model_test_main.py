"""Test driver of mace_model_test: run the built model and compare it with an oracle.

The oracle is onnxruntime on the original ONNX file (same seeded inputs), or stored expected
outputs (.npz). When the build shipped binaries for this very device, starting the runtime
must compile nothing from source: that is what the binaries are for.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mace_cl
import numpy as np
from mace_cl.execution.device import device_identity
from mace_cl.model.manifest import read_manifest
from mace_cl.model.model_file import read_model

# Default (rtol, atol) per the model file's data type, when the test gives none.
# fp32: the kernels sum in another order than the oracle. fp16_fp32: the input, every weight and
# every activation is rounded to half (2^-11 of each value), which over a few layers moves
# outputs by about 1e-3 of their size; 1e-2 leaves room for softmax, which at most doubles a
# logit error. Deep nets drift further (3.7e-2 of the largest logit measured on the 32-conv
# PP-LCNet, tests/e2e/test_fp16_models.py): give such a model's test its own rtol/atol.
# fp32_tf32 convolutions may multiply on TF32 (11 significant bits, as half keeps).
DEFAULT_TOLERANCES = {"fp32": (1e-3, 1e-4), "fp16_fp32": (1e-2, 1e-3), "fp32_tf32": (1e-2, 1e-3)}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--onnx", type=Path, help="the source model, run with onnxruntime as the oracle")
    parser.add_argument("--expected", type=Path, help=".npz of expected outputs (instead of onnxruntime)")
    parser.add_argument("--inputs", type=Path, help=".npz of inputs (default: seeded standard normal)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rtol", type=float, help="default: by the model's data type (DEFAULT_TOLERANCES)")
    parser.add_argument("--atol", type=float, help="default: by the model's data type (DEFAULT_TOLERANCES)")
    parser.add_argument("--device", default="any")
    return parser.parse_args(argv)


def _inputs(runtime: mace_cl.MaceRuntime, path: Path | None, seed: int) -> dict[str, np.ndarray]:
    if path is not None:
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files}
    rng = np.random.default_rng(seed)
    return {info.name: rng.standard_normal(info.shape).astype(np.float32) for info in runtime.graph.inputs}


def _oracle(args: argparse.Namespace, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if args.expected is not None:
        with np.load(args.expected) as stored:
            return {name: stored[name] for name in stored.files}
    import onnxruntime

    session = onnxruntime.InferenceSession(str(args.onnx), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if (args.onnx is None) == (args.expected is None):
        print("give exactly one of --onnx and --expected", file=sys.stderr)
        return 2
    runtime = mace_cl.MaceRuntime.from_manifest(args.manifest, device=args.device)
    failures = []
    origins = runtime.program_origins()
    manifest = read_manifest(args.manifest)
    data_type = read_model(args.manifest.parent / manifest.model).metadata.get("data_type", "fp32")
    if data_type not in DEFAULT_TOLERANCES:
        print(
            f"{args.manifest}: the model's data type {data_type!r} is unknown to this test", file=sys.stderr
        )
        return 2
    default_rtol, default_atol = DEFAULT_TOLERANCES[data_type]
    args.rtol = default_rtol if args.rtol is None else args.rtol
    args.atol = default_atol if args.atol is None else args.atol
    if (
        manifest.compiled_program is not None
        and device_identity(runtime.device).describe() in manifest.devices
    ):
        if origins.get("source"):
            failures.append(
                f"the build shipped binaries for this device, yet {origins['source']} programs "
                f"were compiled from source (origins: {origins})"
            )
    feeds = _inputs(runtime, args.inputs, args.seed)
    actual = runtime.run_dict(feeds)
    expected = _oracle(args, feeds)
    print(f"device: {runtime.device.name.strip()}; data type: {data_type}; programs: {origins}")
    for name, want in expected.items():
        if name not in actual:
            failures.append(f"output {name!r} is missing (model outputs: {sorted(actual)})")
            continue
        got = actual[name]
        if got.shape != want.shape:
            failures.append(f"output {name!r} has shape {got.shape}, expected {want.shape}")
            continue
        error = np.abs(got.astype(np.float64) - want)
        worst = float(error.max()) if error.size else 0.0
        relative = float((error / (np.abs(want) + 1e-12)).max()) if error.size else 0.0
        within = np.allclose(got, want, rtol=args.rtol, atol=args.atol)
        print(
            f"output {name}: max abs error {worst:.3g}, max rel error {relative:.3g} "
            f"(rtol {args.rtol}, atol {args.atol}): {'ok' if within else 'MISMATCH'}"
        )
        if not within:
            failures.append(
                f"output {name!r} differs from the oracle beyond rtol={args.rtol}, atol={args.atol}"
            )
    for failure in failures:
        print("FAIL: " + failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
