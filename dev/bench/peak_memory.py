#!/usr/bin/env python3
"""Peak memory of our runtime vs onnxruntime on the same model, each in a fresh process.

Each child imports its engine, records its resident size, builds a session for MobileNetV2
(dev/bench/pocl_latency.py's builder, random weights, 224x224) and runs 20 inferences; it reports
the peak resident set (ru_maxrss) and the growth over the post-import size. PoCL runs on the
host, so its device buffers are host memory and show up here too.

    python3 dev/bench/peak_memory.py [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).absolute().parent
PATHS = [str(HERE.parents[1] / "runtime"), str(HERE.parents[1] / "tools" / "converter"), str(HERE)]

CHILD = """
import json, resource, sys
import numpy as np
engine, model_path, device = sys.argv[1:4]
def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) / 1024
if engine == "ours":
    from mace_cl import MaceRuntime
    from mace_cl_converter import convert_model
    base = rss_mib()
    runtime = MaceRuntime(convert_model(model_path, {}), device=device)
    run = lambda x: runtime.run_dict({"input": x})
else:
    import onnxruntime
    base = rss_mib()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    run = lambda x: session.run(None, {"input": x})
x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
for _ in range(20):
    run(x)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"after_import_mib": base, "peak_mib": peak, "growth_mib": peak - base}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="OpenCL device for our runtime")
    args = parser.parse_args(argv)
    sys.path[:0] = PATHS
    import onnx
    from pocl_latency import mobilenet_v2

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*PATHS, os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "mobilenet_v2.onnx"
        onnx.save(mobilenet_v2(), model)
        results = {}
        for engine in ("ours", "onnxruntime"):
            child = subprocess.run(
                [sys.executable, "-c", CHILD, engine, str(model), args.device],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            results[engine] = json.loads(child.stdout.splitlines()[-1])
    print("MobileNetV2 224x224, batch 1, 20 inferences; MiB")
    print("engine | after import | peak | growth over import")
    print("--- | --- | --- | ---")
    for engine, r in results.items():
        print(f"{engine} | {r['after_import_mib']:.0f} | {r['peak_mib']:.0f} | {r['growth_mib']:.0f}")
    ratio = results["ours"]["growth_mib"] / results["onnxruntime"]["growth_mib"]
    print(f"growth ratio ours / onnxruntime: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
