"""A user's app: loads the mace_model //models:tiny_net from its runfiles and classifies an input."""

from __future__ import annotations

import mace_cl
import numpy as np

MODEL_TARGET = "models/tiny_net"


def pattern() -> np.ndarray:
    """A fixed 16x16 input: a bright diagonal on a dark background."""
    image = np.full((1, 1, 16, 16), -1.0, np.float32)
    for i in range(16):
        image[0, 0, i, i] = 1.0
    return image


def classify(runtime: mace_cl.MaceRuntime) -> np.ndarray:
    (scores,) = runtime.run(None, {"pixels": pattern()})
    return scores


def main() -> int:
    runtime = mace_cl.load_model_runtime(MODEL_TARGET)
    scores = classify(runtime)
    print(f"manifest: {mace_cl.find_manifest(MODEL_TARGET)}")
    print(f"programs: {runtime.program_origins()}")
    print(f"scores: {np.array2string(scores[0], precision=4)}")
    print(f"class: {int(np.argmax(scores[0]))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
